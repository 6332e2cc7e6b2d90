package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image. The chart runs `qscale run` by name, so the binary sits on PATH.
const (
	binaryPath = "/usr/local/bin/qscale"
	caPath     = "/etc/ssl/certs/ca-certificates.crt" // where Go's crypto/x509 looks first on Linux
	imagePATH  = "/usr/local/bin:/usr/bin:/bin"
)

// nonRoot is the user and group the image runs as, the chart's runAsUser and runAsGroup
// defaults: numeric, because an image without /etc/passwd cannot resolve names.
const nonRoot = "65532:65532"

// Ports the chart's Deployment opens: the metrics API, Prometheus metrics and health probes.
var ports = []string{"6443/tcp", "8080/tcp", "8081/tcp"}

// Platform is an OS and CPU architecture an image runs on.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatforms reads a comma-separated list such as "linux/amd64,linux/arm64". Only Linux
// is accepted: the image is for Kubernetes nodes.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	seen := map[Platform]bool{}
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		osName, arch, ok := strings.Cut(field, "/")
		if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want os/arch, such as linux/amd64", field)
		}
		if osName != "linux" {
			return nil, fmt.Errorf("platform %q: only linux images are built", field)
		}
		p := Platform{OS: osName, Arch: arch}
		if seen[p] {
			return nil, fmt.Errorf("platform %q is listed twice", field)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// Spec is what one platform's image holds.
type Spec struct {
	Platform Platform
	Binary   []byte    // a static qscale built for Platform
	CACerts  []byte    // the PEM bundle brokers' TLS certificates are checked against
	Version  string    // qscale's version, recorded as a label
	Source   string    // where the code lives, recorded as a label; may be empty
	Created  time.Time // recorded as the creation time; fixed for reproducible images
}

// Build assembles the image of one platform: a single layer with the binary and the CA
// bundle on an empty base. There is no shell or package manager to patch, and nothing but
// qscale for a scanner to report.
func Build(s Spec) (v1.Image, error) {
	if len(s.Binary) == 0 {
		return nil, fmt.Errorf("image for %s: no qscale binary", s.Platform)
	}
	if len(s.CACerts) == 0 {
		return nil, fmt.Errorf("image for %s: empty CA bundle: qscale could not verify brokers' TLS certificates", s.Platform)
	}
	if s.Created.IsZero() {
		s.Created = time.Unix(0, 0).UTC() // the same inputs then give the same digest
	}
	layerBytes, err := layerTar(s.Created, []file{
		{name: caPath, mode: 0o644, data: s.CACerts},
		{name: binaryPath, mode: 0o755, data: s.Binary},
	})
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: "qscale build/image", Comment: "qscale " + s.Version},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = s.Platform.OS, s.Platform.Arch
	cfg.Created = v1.Time{Time: s.Created}
	cfg.Config = v1.Config{
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"run"},
		User:         nonRoot,
		Env:          []string{"PATH=" + imagePATH},
		ExposedPorts: map[string]struct{}{},
		Labels:       labels(s),
	}
	for _, p := range ports {
		cfg.Config.ExposedPorts[p] = struct{}{}
	}
	return mutate.ConfigFile(img, cfg)
}

// Index gathers the images of several platforms under one reference, as registries serve
// multi-platform images.
func Index(images map[Platform]v1.Image, order []Platform) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range order {
		img, ok := images[p]
		if !ok {
			return nil, fmt.Errorf("no image for %s", p)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	return idx, nil
}

func labels(s Spec) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "qscale",
		"org.opencontainers.image.description": "Kubernetes autoscaling on queue depth through the external metrics API",
		"org.opencontainers.image.version":     s.Version,
	}
	if s.Source != "" {
		l["org.opencontainers.image.source"] = s.Source
	}
	return l
}

type file struct {
	name string
	mode int64
	data []byte
}

// layerTar writes files, and the folders that hold them, owned by root so the non-root user
// can read and run but not change them.
func layerTar(modTime time.Time, files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	made := map[string]bool{}
	for _, f := range files {
		rel := strings.TrimPrefix(f.name, "/")
		var dirs []string
		for d := path.Dir(rel); d != "." && !made[d]; d = path.Dir(d) {
			dirs = append([]string{d}, dirs...)
			made[d] = true
		}
		for _, d := range dirs {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: modTime, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: f.mode, Size: int64(len(f.data)), ModTime: modTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
