package activemqtest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMissingPrerequisites(t *testing.T) {
	tests := []struct {
		name     string
		lookPath func(string) (string, error)
		want     string // one of the missing items; "" for none
	}{
		{name: "java on the PATH", lookPath: func(string) (string, error) { return "/usr/bin/java", nil }},
		{name: "no java", lookPath: func(string) (string, error) { return "", errors.New("not found") }, want: "java"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := missingPrerequisites(tt.lookPath)
			if tt.want == "" && len(got) > 0 {
				t.Fatalf("missing %v on a machine set up by .ci/activemq.sh", got)
			}
			if tt.want != "" && !slices.Contains(got, tt.want) {
				t.Fatalf("missing = %v, want it to name %s", got, tt.want)
			}
		})
	}
}

// The layout is what the broker reads: every file there, the jars linked, and a second
// layout in the same folder (a restart) succeeds.
func TestWriteLayout(t *testing.T) {
	l := layout{Dir: t.TempDir(), Name: "b", User: "u", Password: "p&<", StompPort: 1, JolokiaPort: 2}
	for range 2 {
		if err := writeLayout(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"conf/activemq.xml", "conf/jetty.xml", "conf/log4j.properties", "conf/jetty-realm.properties", "lib/xstream.jar", "lib/web/jolokia-core.jar"} {
		if _, err := os.Lstat(filepath.Join(l.Dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	xml, err := os.ReadFile(filepath.Join(l.Dir, "conf/activemq.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(xml), `password="p&amp;&lt;"`) {
		t.Errorf("activemq.xml does not escape the password:\n%s", xml)
	}
}
