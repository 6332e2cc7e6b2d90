// Command image builds qscale's container image with neither a container engine nor a base
// image to pull: a static qscale binary per platform and the build machine's CA bundle, on an
// empty base, running as a non-root user. It writes one platform as a tarball that
// `docker load` (or `kind load image-archive`) reads, or pushes several to a registry as one
// multi-platform image.
//
//	go run . -source ../.. -version 0.1.0 -tar qscale.tar -tag qscale:0.1.0
//	go run . -source ../.. -version 0.1.0 -platforms linux/amd64,linux/arm64 -push registry.example.com/qscale:0.1.0
//
// Registry credentials come from the Docker config file (~/.docker/config.json), as for
// `docker push`. SOURCE_DATE_EPOCH, when set, is the recorded creation time; otherwise it is
// the Unix epoch, so the same sources give the same image digest.
package main

import (
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	source, main, version, platforms, ca string
	tar, tag, push, sourceURL            string
	created                              time.Time
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.source, "source", ".", "the qscale repository to build from")
	fs.StringVar(&o.main, "main", "./cmd/qscale", "the main package in -source to build as /usr/local/bin/qscale")
	fs.StringVar(&o.version, "version", "", "the version qscale reports and the image is labelled with (required)")
	fs.StringVar(&o.platforms, "platforms", "linux/"+runtime.GOARCH, "comma-separated os/arch list")
	fs.StringVar(&o.ca, "ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to put in the image")
	fs.StringVar(&o.tar, "tar", "", "write the image to this tarball (one platform)")
	fs.StringVar(&o.tag, "tag", "", "the name the tarball's image loads as (default qscale:<version>)")
	fs.StringVar(&o.push, "push", "", "push the image to this registry reference")
	fs.StringVar(&o.sourceURL, "source-url", "", "recorded as the org.opencontainers.image.source label")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.version == "" {
		return o, errors.New("-version is required")
	}
	if (o.tar == "") == (o.push == "") {
		return o, errors.New("give exactly one of -tar and -push")
	}
	if o.tag == "" {
		o.tag = "qscale:" + o.version
	}
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return o, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since the Unix epoch", epoch)
		}
		o.created = time.Unix(secs, 0).UTC()
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	platforms, err := ParsePlatforms(o.platforms)
	if err != nil {
		return fmt.Errorf("-platforms: %w", err)
	}
	if o.tar != "" && len(platforms) != 1 {
		return fmt.Errorf("-tar holds one platform (docker load reads no multi-platform index), not %d: use -push for several", len(platforms))
	}
	ca, err := os.ReadFile(o.ca)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	dir, err := os.MkdirTemp("", "qscale-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	images := map[Platform]v1.Image{}
	for _, p := range platforms {
		bin, err := buildBinary(ctx, o.source, o.main, o.version, p, dir)
		if err != nil {
			return err
		}
		img, err := Build(Spec{Platform: p, Binary: bin, CACerts: ca, Version: o.version, Source: o.sourceURL, Created: o.created})
		if err != nil {
			return err
		}
		images[p] = img
	}
	if o.tar != "" {
		return writeTar(o.tar, o.tag, images[platforms[0]], out)
	}
	return push(ctx, o.push, images, platforms, out)
}

// buildBinary compiles the main package (qscale's, unless a test says otherwise) for p without
// cgo and checks that the result needs no dynamic loader: the image has none.
func buildBinary(ctx context.Context, source, main, version string, p Platform, dir string) ([]byte, error) {
	bin := filepath.Join(dir, "qscale-"+p.OS+"-"+p.Arch)
	//nolint:gosec // the go tool with flags this program sets; version is the caller's own
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, main)
	cmd.Dir = source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building qscale for %s in %s: %w\n%s", p, source, err, msg)
	}
	if err := checkStatic(bin); err != nil {
		return nil, fmt.Errorf("qscale for %s: %w", p, err)
	}
	return os.ReadFile(bin) //nolint:gosec // a file this program wrote in its own temporary folder
}

// errDynamic says a binary asks for a dynamic loader or shared libraries.
var errDynamic = errors.New("is dynamically linked: an image without a libc cannot run it")

func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return errDynamic
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("%w (needs %v)", errDynamic, libs)
	}
	return nil
}

func writeTar(path, tag string, img v1.Image, out io.Writer) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%s, %s)\n", path, ref, digest)
	return nil
}

func push(ctx context.Context, to string, images map[Platform]v1.Image, order []Platform, out io.Writer) error {
	ref, err := name.ParseReference(to)
	if err != nil {
		return fmt.Errorf("-push: %w", err)
	}
	idx, err := Index(images, order)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pushed %s@%s\n", ref.Context(), digest)
	return nil
}
