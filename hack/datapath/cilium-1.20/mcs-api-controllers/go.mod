// Stand-in for sigs.k8s.io/mcs-api/controllers v0.5.2, which
// github.com/cilium/cilium v1.20.2 requires and the module proxy refuses
// (403; the root module sigs.k8s.io/mcs-api is served but does not contain
// the package). Cilium uses one name of it outside its tests: the
// annotation below, read and written by its multi-cluster Services
// controllers (clustermesh's MCS-API support, which the lab does not enable).
module sigs.k8s.io/mcs-api/controllers

go 1.24
