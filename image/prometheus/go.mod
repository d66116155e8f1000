// The Prometheus release built into the scalelab image (3.9.1), pinned with its go.sum hash.
// image/prometheus/build.sh copies this module's source, keeps only the discovery
// plugins named in plugins.yml (file and HTTP discovery are always built in), and builds
// cmd/prometheus with CGO disabled.
module scalelab.local/image/prometheus

go 1.24.9

require github.com/prometheus/prometheus v0.309.1
