// Package controllers stands in for sigs.k8s.io/mcs-api/controllers in the
// lab's Cilium build (see go.mod).
package controllers

// DerivedServiceAnnotation names, on a ServiceImport, the Service derived
// from it (the multi-cluster Services API's well-known annotation).
const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"
