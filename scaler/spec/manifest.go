package spec

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is a Kubernetes object of a manifest, as far as checking reads it. Fields other
// objects may fill with anything (a ConfigMap's data, a Service's spec) are kept raw and
// read only for the kinds that need them, so that no other object can stop the check.
type object struct {
	file     string
	document int // 1-based, in file

	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string                     `json:"name"`
		Namespace   string                     `json:"namespace"`
		Annotations map[string]json.RawMessage `json:"annotations"`
	} `json:"metadata"`
	Data       json.RawMessage   `json:"data"`
	StringData json.RawMessage   `json:"stringData"`
	Spec       json.RawMessage   `json:"spec"`
	Items      []json.RawMessage `json:"items"`

	raw json.RawMessage // the object whole, for ReadManifests
}

// Manifest is one object of the inputs, as ReadManifests splits them: where it is, what it is,
// and its JSON, for a reader that decodes the kinds it knows with types of its own.
type Manifest struct {
	File       string
	Document   int // 1-based, in File
	APIVersion string
	Kind       string
	Namespace  string // as written: "" when the object names none
	Name       string
	JSON       json.RawMessage

	o *object
}

// Group is the API group of the object's apiVersion: "" for the core group.
func (m Manifest) Group() string { return m.o.group() }

// InNamespace is the namespace the object is in once applied: "default" when it names none.
func (m Manifest) InNamespace() string { return m.o.namespace() }

// SecretData returns a Secret's data and stringData, decoded, as the API server would.
func (m Manifest) SecretData() (map[string]string, error) { return m.o.secretData() }

// ReadManifests splits the inputs into their objects, Lists expanded, in the order of the
// inputs. A document that cannot be read is a Finding with an error, and the documents after
// it are still read; only an input that cannot be read at all is an error.
func ReadManifests(inputs []Input) ([]Manifest, []Finding, error) {
	var out []Manifest
	var unreadable []Finding
	for _, in := range inputs {
		objects, bad, err := readObjects(in)
		if err != nil {
			return nil, nil, err
		}
		unreadable = append(unreadable, bad...)
		for _, o := range objects {
			out = append(out, Manifest{File: o.file, Document: o.document, APIVersion: o.APIVersion, Kind: o.Kind,
				Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, JSON: o.raw, o: o})
		}
	}
	return out, unreadable, nil
}

func (o *object) namespace() string {
	if o.Metadata.Namespace == "" {
		return "default"
	}
	return o.Metadata.Namespace
}

// group is the API group of the object's apiVersion: "" for the core group.
func (o *object) group() string {
	g, _, found := strings.Cut(o.APIVersion, "/")
	if !found {
		return ""
	}
	return g
}

// annotations returns the object's annotations as strings, and the keys whose value is not a
// string: Kubernetes refuses those, and an unquoted 30 copied from a ScaledObject is one.
func (o *object) annotations() (map[string]string, []string) {
	out := make(map[string]string, len(o.Metadata.Annotations))
	var notStrings []string
	for k, raw := range o.Metadata.Annotations {
		var s string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			out[k] = s
		case bytes.Equal(raw, []byte("null")):
			out[k] = ""
			notStrings = append(notStrings, k)
		default:
			out[k] = string(raw)
			notStrings = append(notStrings, k)
		}
	}
	return out, notStrings
}

// hasQscaleAnnotation reports whether any annotation is a qscale.io one.
func hasQscaleAnnotation(annotations map[string]json.RawMessage) bool {
	for k := range annotations {
		if IsConfigAnnotation(k) {
			return true
		}
	}
	return false
}

// secretData returns a Secret's data and stringData, decoded, as the API server would.
func (o *object) secretData() (map[string]string, error) {
	var data map[string]string
	if len(o.Data) > 0 {
		if err := json.Unmarshal(o.Data, &data); err != nil {
			return nil, errors.New("data must map keys to base64 strings")
		}
	}
	out := make(map[string]string, len(data))
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("data.%s is not base64 (plain text goes in stringData)", k)
		}
		out[k] = string(b)
	}
	var stringData map[string]string
	if len(o.StringData) > 0 {
		if err := json.Unmarshal(o.StringData, &stringData); err != nil {
			return nil, errors.New("stringData must map keys to strings")
		}
	}
	for k, v := range stringData {
		out[k] = v
	}
	return out, nil
}

// podTemplateAnnotations returns the annotations of a Deployment's or StatefulSet's pod
// template, where qscale.io annotations are a common slip: they belong on the workload.
func (o *object) podTemplateAnnotations() map[string]json.RawMessage {
	var s struct {
		Template struct {
			Metadata struct {
				Annotations map[string]json.RawMessage `json:"annotations"`
			} `json:"metadata"`
		} `json:"template"`
	}
	if len(o.Spec) == 0 || json.Unmarshal(o.Spec, &s) != nil {
		return nil
	}
	return s.Template.Metadata.Annotations
}

// scaleTarget returns the kind and name of a ScaledObject's scaleTargetRef.
func (o *object) scaleTarget() (kind, name string) {
	var s struct {
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
	}
	if len(o.Spec) == 0 || json.Unmarshal(o.Spec, &s) != nil {
		return "", ""
	}
	if s.ScaleTargetRef.Kind == "" {
		s.ScaleTargetRef.Kind = "Deployment"
	}
	return s.ScaleTargetRef.Kind, s.ScaleTargetRef.Name
}

// readObjects splits one input into its objects, expanding Lists. A document that cannot be
// read is a Finding with an error; the documents after it are still read.
func readObjects(in Input) ([]*object, []Finding, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in.Data))
	var objects []*object
	var unreadable []Finding
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, unreadable, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", in.Name, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			unreadable = append(unreadable, documentError(in.Name, doc, "not YAML or JSON: "+err.Error()))
			continue
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue // a document of comments only
		}
		found, problem := decodeObjects(js, in.Name, doc)
		if problem != "" {
			unreadable = append(unreadable, documentError(in.Name, doc, problem))
		}
		objects = append(objects, found...)
	}
}

// decodeObjects decodes a document's object, and the items of a List.
func decodeObjects(js []byte, file string, doc int) ([]*object, string) {
	o := &object{file: file, document: doc, raw: js}
	if err := json.Unmarshal(js, o); err != nil {
		return nil, "not a Kubernetes object: " + err.Error()
	}
	if o.Items == nil {
		return []*object{o}, ""
	}
	var out []*object
	for i, item := range o.Items {
		found, problem := decodeObjects(item, file, doc)
		if problem != "" {
			return out, fmt.Sprintf("%s items[%d]: %s", o.Kind, i, problem)
		}
		out = append(out, found...)
	}
	return out, ""
}

func documentError(file string, doc int, msg string) Finding {
	return Finding{File: file, Document: doc, Status: StatusError, Errors: []Problem{{Message: msg}}}
}
