package detect

import "regexp"

// portmapPlugin matches a CNI plugin entry of type portmap in a CNI config
// (or a template of one, such as Calico's cni_network_config, which is not
// JSON until its placeholders are filled in).
var portmapPlugin = regexp.MustCompile(`"type"\s*:\s*"portmap"`)

// ChainsPortmap reports whether a CNI config chains the portmap plugin.
func ChainsPortmap(conf string) bool { return portmapPlugin.MatchString(conf) }
