package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// repoRoot is the qscale repository this tool lives in.
const repoRoot = "../.."

func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Platform
		wantErr  string
	}{
		{name: "one", in: "linux/amd64", want: []Platform{{"linux", "amd64"}}},
		{name: "two with spaces", in: "linux/amd64, linux/arm64", want: []Platform{{"linux", "amd64"}, {"linux", "arm64"}}},
		{name: "no arch", in: "linux", wantErr: "want os/arch"},
		{name: "empty", in: "", wantErr: "want os/arch"},
		{name: "variant", in: "linux/arm/v7", wantErr: "want os/arch"},
		{name: "not linux", in: "windows/amd64", wantErr: "only linux"},
		{name: "twice", in: "linux/amd64,linux/amd64", wantErr: "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlatforms(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePlatforms(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePlatforms(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// testSpec is a made-up platform's image contents.
func testSpec() Spec {
	return Spec{
		Platform: Platform{"linux", "arm64"},
		Binary:   []byte("\x7fELF not really"),
		CACerts:  []byte("-----BEGIN CERTIFICATE-----\n"),
		Version:  "1.2.3",
		Source:   "https://example.com/qscale",
		Created:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func build(t *testing.T, spec Spec) v1.Image {
	t.Helper()
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBuildConfig(t *testing.T) {
	spec := testSpec()
	cfg, err := build(t, spec).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	tests := []struct {
		name string
		ok   bool
		got  any
	}{
		{"platform", cfg.OS == "linux" && cfg.Architecture == "arm64", cfg.OS + "/" + cfg.Architecture},
		{"creation time", cfg.Created.Equal(spec.Created), cfg.Created},
		{"runs qscale run", slices.Equal(c.Entrypoint, []string{"/usr/local/bin/qscale"}) && slices.Equal(c.Cmd, []string{"run"}), [][]string{c.Entrypoint, c.Cmd}},
		{"the chart's non-root user", c.User == "65532:65532", c.User},
		// The chart runs `qscale` by name.
		{"PATH holds the binary", slices.Contains(c.Env, "PATH=/usr/local/bin:/usr/bin:/bin"), c.Env},
		{"the chart's ports", reflect.DeepEqual(keys(c.ExposedPorts), []string{"6443/tcp", "8080/tcp", "8081/tcp"}), c.ExposedPorts},
		{"version label", c.Labels["org.opencontainers.image.version"] == "1.2.3", c.Labels},
		{"source label", c.Labels["org.opencontainers.image.source"] == spec.Source, c.Labels},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("got %v", tt.got)
			}
		})
	}
}

func TestBuildFiles(t *testing.T) {
	spec := testSpec()
	files := extract(t, build(t, spec))
	want := map[string]struct {
		mode int64
		data []byte
	}{
		"usr/local/bin/qscale":              {0o755, spec.Binary},
		"etc/ssl/certs/ca-certificates.crt": {0o644, spec.CACerts},
	}
	for name, w := range want {
		f, ok := files[name]
		if !ok {
			t.Errorf("%s missing from the image; it holds %v", name, keys(files))
			continue
		}
		if f.hdr.Mode != w.mode || f.hdr.Uid != 0 || !bytes.Equal(f.data, w.data) {
			t.Errorf("%s: mode %o uid %d, %d bytes; want mode %o owned by root, %d bytes", name, f.hdr.Mode, f.hdr.Uid, len(f.data), w.mode, len(w.data))
		}
	}
	if len(files) != len(want) {
		t.Errorf("the image holds %v; want only %v", keys(files), keys(want))
	}
}

func TestBuildIsReproducible(t *testing.T) {
	spec := testSpec()
	if d1, d2 := digest(t, build(t, spec)), digest(t, build(t, spec)); d1 != d2 {
		t.Errorf("the same inputs gave digests %s and %s", d1, d2)
	}
	later := spec
	later.Created = spec.Created.Add(time.Second)
	if digest(t, build(t, later)) == digest(t, build(t, spec)) {
		t.Error("a different creation time gave the same digest")
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{name: "no binary", spec: Spec{Platform: Platform{"linux", "amd64"}, CACerts: []byte("x")}, wantErr: "no qscale binary"},
		{name: "no CA bundle", spec: Spec{Platform: Platform{"linux", "amd64"}, Binary: []byte("x")}, wantErr: "empty CA bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.spec); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Build = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		wantErr string
	}{
		{name: "no version", args: []string{"-tar", "x.tar"}, wantErr: "-version is required"},
		{name: "neither output", args: []string{"-version", "1"}, wantErr: "exactly one of -tar and -push"},
		{name: "both outputs", args: []string{"-version", "1", "-tar", "x.tar", "-push", "r/q:1"}, wantErr: "exactly one of -tar and -push"},
		{name: "tarball of two platforms", args: []string{"-version", "1", "-tar", "x.tar", "-platforms", "linux/amd64,linux/arm64"}, wantErr: "-tar holds one platform"},
		{name: "bad platform", args: []string{"-version", "1", "-tar", "x.tar", "-platforms", "darwin/arm64"}, wantErr: "-platforms: platform \"darwin/arm64\": only linux"},
		{name: "missing CA bundle", args: []string{"-version", "1", "-tar", "x.tar", "-ca", "/nonexistent/ca.crt"}, wantErr: "-ca:"},
		{name: "stray argument", args: []string{"-version", "1", "-tar", "x.tar", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "bad SOURCE_DATE_EPOCH", args: []string{"-version", "1", "-tar", "x.tar"}, env: "yesterday", wantErr: "SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.env)
			err := run(context.Background(), tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%q) = %v; want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestTarballRunsQscale builds the image from this repository, loads it back from the
// tarball as `docker load` would, and runs the binary it holds.
func TestTarballRunsQscale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "qscale.tar")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-source", repoRoot, "-version", "9.8.7-test", "-tar", path}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "qscale:9.8.7-test") {
		t.Errorf("output %q does not name the tag", out.String())
	}
	tag, err := name.NewTag("qscale:9.8.7-test")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Created.Unix() != 1700000000 {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH", cfg.Created)
	}
	bin := filepath.Join(dir, "qscale")
	if err := os.WriteFile(bin, extract(t, img)["usr/local/bin/qscale"].data, 0o755); err != nil { //nolint:gosec // a test binary to run
		t.Fatal(err)
	}
	if err := checkStatic(bin); err != nil {
		t.Errorf("the image's qscale: %v", err)
	}
	got, err := exec.Command(bin, "version").CombinedOutput() //nolint:gosec // the binary just extracted
	if err != nil || !strings.Contains(string(got), "9.8.7-test") {
		t.Errorf("qscale version from the image: %q, %v; want it to report 9.8.7-test", got, err)
	}
}

// TestPushTwoPlatforms pushes to a registry served in-process and reads the index back. It
// builds a small stand-in for qscale: building qscale itself for a second architecture would
// cost minutes and prove nothing more about the index (TestTarballRunsQscale builds qscale).
func TestPushTwoPlatforms(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	to := strings.TrimPrefix(srv.URL, "http://") + "/team/qscale:2.0.0"
	args := []string{"-source", filepath.Join("testdata", "standin"), "-main", ".", "-version", "2.0.0", "-platforms", "linux/amd64,linux/arm64", "-push", to}
	if err := run(context.Background(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(to)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var seen []string
	for _, desc := range manifest.Manifests {
		if desc.Platform == nil {
			t.Fatalf("manifest %s has no platform", desc.Digest)
		}
		arch := desc.Platform.Architecture
		seen = append(seen, desc.Platform.OS+"/"+arch)
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != arch {
			t.Errorf("%s: the config says %s", arch, cfg.Architecture)
		}
		f, err := elf.NewFile(bytes.NewReader(extract(t, img)["usr/local/bin/qscale"].data))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != machines[arch] {
			t.Errorf("%s: the binary is for %s", arch, f.Machine)
		}
	}
	if !slices.Equal(seen, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("the index holds %v", seen)
	}
}

func TestCheckStatic(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to stand for a dynamically linked binary")
	}
	if err := checkStatic(sh); !errors.Is(err, errDynamic) {
		t.Errorf("checkStatic(%s) = %v; want errDynamic", sh, err)
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// extract reads an image's flattened file system: regular files by path, without folders.
func extract(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = entry{hdr, data}
	}
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
