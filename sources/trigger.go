package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Trigger is a parsed, validated and compiled trigger, ready to poll. Registry.Parse makes
// it and fixes its connection key and identity then; nothing changes a Trigger afterwards.
type Trigger struct {
	Type   string
	Name   string
	Config Config

	key string // the connection key, Type and Config.Connection()
	id  string // digest of its type, name and parameter values
}

func newTrigger(p Params, cfg Config) Trigger {
	return Trigger{Type: p.Type, Name: p.Name, Config: cfg, key: connectionKey(p.Type, cfg), id: paramsDigest(p, cfg)}
}

// Key identifies the connection the trigger is read over: triggers with equal keys share one
// Source. It never holds a secret in clear.
func (t Trigger) Key() string {
	if t.key == "" { // a Trigger built by hand, in a test
		return connectionKey(t.Type, t.Config)
	}
	return t.key
}

func connectionKey(typ string, cfg Config) string { return typ + "\x00" + cfg.Connection() }

// Equal reports whether t and o are the same trigger: the same type and name, and the same
// value for each parameter, so that one's samples and failure count are the other's. It is
// the one rule by which an unchanged trigger is told from a changed one.
func (t Trigger) Equal(o Trigger) bool {
	if t.id == "" || o.id == "" { // built by hand: only the very same config is equal
		return t.Type == o.Type && t.Name == o.Name && t.Config == o.Config
	}
	return t.id == o.id
}

// Identity is the digest by which Equal tells triggers apart: qscale's replicas name a trigger
// to each other by it, and it is never shown to users. It is empty for a Trigger built by hand.
func (t Trigger) Identity() string { return t.id }

// paramsDigest digests a trigger's type, name and the value each of its parameters takes
// (from the Secret or the metadata, as Decode reads them). Parameters written the same way
// make equal triggers, and a Secret key that names no parameter changes nothing; a rotated
// password makes a different trigger. The digest is never shown.
func paramsDigest(p Params, cfg Config) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s", len(s), s) }
	field(p.Type)
	field(p.Name)
	for _, name := range Names(cfg) {
		raw, fromSecret, set := lookup(name, p.Metadata, p.Secret)
		if set {
			field(name)
			fmt.Fprintf(h, "%t", fromSecret) // where a value comes from can matter (HostURL)
			field(raw)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
