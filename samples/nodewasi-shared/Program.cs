using Containerd.Shim.Wasm.Shared;
using Containerd.Shimkit;
using NodeWasi;

// The daemon is found through $CONTAINERD_NODEWASID_SOCKET (containerd's environment, inherited by the client shim),
// else /run/io.containerd.nodewasid.v1/manager.sock.
var endpoint = new SharedModeEndpoint("io.containerd.nodewasid.v1", "containerd-shim-nodewasid-v1 daemon", "CONTAINERD_NODEWASID_SOCKET");
var info = new ShimInfo(endpoint.RuntimeName, "0.1.0", "sample");
return args is ["daemon", .. var rest]
    ? SharedDaemon.Run(info, endpoint, new NodeInstanceFactory(), rest)
    : ShimMain.Run(info, new SharedShimClient(endpoint), args);
