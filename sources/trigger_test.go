package sources_test

import (
	"testing"

	"github.com/qscale/qscale/sources"
)

type loginConfig struct {
	Conn     string `param:"conn,required"`
	Queue    string `param:"queue"`
	Password string `param:"password,secret"`
}

func (c *loginConfig) Connection() string             { return c.Conn }
func (c *loginConfig) Target() float64                { return 1 }
func (c *loginConfig) Validate() []sources.FieldError { return nil }

func TestTriggerEqual(t *testing.T) {
	reg := sources.Registry{"login": {NewConfig: func() sources.Config { return &loginConfig{} }}}
	parse := func(name string, md, secret map[string]string) sources.Trigger {
		t.Helper()
		tr, err := reg.Parse(sources.Params{Type: "login", Name: name, Metadata: md, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	base := parse("q", map[string]string{"conn": "a", "queue": "orders"}, map[string]string{"password": "pw"})
	tests := []struct {
		name  string
		other sources.Trigger
		equal bool
	}{
		{name: "parsed again from the same parameters", equal: true,
			other: parse("q", map[string]string{"conn": "a", "queue": "orders"}, map[string]string{"password": "pw"})},
		{name: "the Secret gained a key no parameter reads", equal: true,
			other: parse("q", map[string]string{"conn": "a", "queue": "orders"}, map[string]string{"password": "pw", "other-app": "x"})},
		{name: "the same value with blanks around it", equal: true,
			other: parse("q", map[string]string{"conn": " a ", "queue": "orders"}, map[string]string{"password": "pw"})},
		{name: "a rotated password",
			other: parse("q", map[string]string{"conn": "a", "queue": "orders"}, map[string]string{"password": "pw2"})},
		{name: "another queue",
			other: parse("q", map[string]string{"conn": "a", "queue": "payments"}, map[string]string{"password": "pw"})},
		{name: "another name",
			other: parse("r", map[string]string{"conn": "a", "queue": "orders"}, map[string]string{"password": "pw"})},
		{name: "a value moved from metadata to the Secret",
			other: parse("q", map[string]string{"conn": "a"}, map[string]string{"password": "pw", "queue": "orders"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.Equal(tt.other); got != tt.equal {
				t.Errorf("Equal = %v, want %v", got, tt.equal)
			}
			if got := tt.other.Equal(base); got != tt.equal {
				t.Errorf("Equal is not symmetric: %v", got)
			}
			if base.Key() != tt.other.Key() && tt.equal {
				t.Errorf("equal triggers with different connection keys %q and %q", base.Key(), tt.other.Key())
			}
		})
	}
}
