package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/qscale/qscale/sources"
)

// Finding is the outcome of checking one workload of a manifest.
type Finding struct {
	Object string // Kind namespace/name
	Err    error  // nil when its annotations are valid
}

// manifestObject is the part of a Kubernetes object that checking reads.
type manifestObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data       map[string][]byte `json:"data"`       // Secrets
	StringData map[string]string `json:"stringData"` // Secrets
	Items      []manifestObject  `json:"items"`      // Lists
}

// CheckManifests validates the qscale.io annotations of every Deployment and StatefulSet in a
// multi-document YAML or JSON manifest, offline. Secrets in the same manifest are used for
// authenticationRef; a parameter that a Secret outside the manifest could supply is not
// reported missing.
func CheckManifests(r io.Reader, reg sources.Registry) ([]Finding, error) {
	objects, err := readManifests(r)
	if err != nil {
		return nil, err
	}
	secrets := map[string]map[string]string{}
	for _, o := range objects {
		if o.Kind == "Secret" {
			data := map[string]string{}
			for k, v := range o.Data {
				data[k] = string(v)
			}
			for k, v := range o.StringData {
				data[k] = v
			}
			secrets[namespaceOf(o)+"/"+o.Metadata.Name] = data
		}
	}
	var findings []Finding
	for _, o := range objects {
		if (o.Kind != "Deployment" && o.Kind != "StatefulSet") || !HasTriggers(o.Metadata.Annotations) {
			continue
		}
		f := Finding{Object: fmt.Sprintf("%s %s/%s", o.Kind, namespaceOf(o), o.Metadata.Name)}
		_, _, f.Err = Load(o.Metadata.Annotations, reg, func(name string) (map[string]string, error) {
			if data, ok := secrets[namespaceOf(o)+"/"+name]; ok {
				return data, nil
			}
			return nil, ErrSecretUnavailable
		})
		findings = append(findings, f)
	}
	return findings, nil
}

func namespaceOf(o manifestObject) string {
	if o.Metadata.Namespace == "" {
		return "default"
	}
	return o.Metadata.Namespace
}

// readManifests splits a multi-document manifest into objects, expanding Lists.
func readManifests(r io.Reader) ([]manifestObject, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []manifestObject
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o manifestObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, o)
		out = append(out, o.Items...)
	}
}
