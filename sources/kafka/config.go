package kafka

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/qscale/qscale/sources"
)

// Config is a kafka trigger's parameters, with KEDA's names and defaults.
type Config struct {
	BootstrapServers                   []string        `param:"bootstrapServers,required"`
	ConsumerGroup                      string          `param:"consumerGroup,required"`
	Topics                             []string        `param:"topic"`
	LagThreshold                       float64         `param:"lagThreshold,default=10,positive"`
	ActivationLagThreshold             float64         `param:"activationLagThreshold,default=0,min=0"`
	OffsetResetPolicy                  string          `param:"offsetResetPolicy,default=latest,enum=latest|earliest"`
	AllowIdleConsumers                 bool            `param:"allowIdleConsumers"`
	LimitToPartitionsWithLag           bool            `param:"limitToPartitionsWithLag"`
	EnsureEvenDistributionOfPartitions bool            `param:"ensureEvenDistributionOfPartitions"`
	ExcludePersistentLag               bool            `param:"excludePersistentLag"`
	ScaleToZeroOnInvalidOffset         bool            `param:"scaleToZeroOnInvalidOffset"`
	PartitionLimitation                PartitionSet    `param:"partitionLimitation"`
	SASL                               string          `param:"sasl,default=none,enum=none|plain|plaintext|scram_sha256|scram_sha512"`
	Username                           string          `param:"username"`
	Password                           string          `param:"password,secret"`
	TLS                                string          `param:"tls,default=disable,enum=enable|disable"`
	CA                                 string          `param:"ca"`
	Cert                               string          `param:"cert"`
	Key                                string          `param:"key,secret"`
	KeyPassword                        string          `param:"keyPassword,secret"`
	UnsafeSSL                          bool            `param:"unsafeSsl"`
	Version                            sources.Ignored `param:"version"`
	FullMetadata                       sources.Ignored `param:"fullMetadata"`

	// BacklogAge is targetBacklogAge, which replaces lagThreshold, and replicaThroughput.
	sources.BacklogAge
}

var _ sources.Config = (*Config)(nil)

// Target implements sources.Config: lag per replica.
func (c *Config) Target() float64 { return c.LagThreshold }

// Connection implements sources.Config. Triggers on the same cluster with the same
// credentials share one client; credentials appear only as a digest.
func (c *Config) Connection() string {
	servers := slices.Clone(c.BootstrapServers)
	slices.Sort(servers)
	h := sha256.New()
	for _, s := range []string{c.Password, c.CA, c.Cert, c.Key, c.KeyPassword} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return fmt.Sprintf("%s sasl=%s user=%q tls=%s unsafe=%t auth=%s",
		strings.Join(servers, ","), c.mechanism(), c.Username, c.TLS, c.UnsafeSSL, hex.EncodeToString(h.Sum(nil)[:12]))
}

// mechanism returns the SASL mechanism, with KEDA's "plaintext" spelled as the contract's "plain".
func (c *Config) mechanism() string {
	if c.SASL == "plaintext" {
		return "plain"
	}
	return c.SASL
}

func (c *Config) tlsEnabled() bool { return c.TLS == "enable" }

// cluster names the cluster in errors and logs.
func (c *Config) cluster() string { return strings.Join(c.BootstrapServers, ",") }

// Validate implements sources.Config.
func (c *Config) Validate() []sources.FieldError {
	var v sources.Problems
	for _, s := range c.BootstrapServers {
		if host, port, err := net.SplitHostPort(s); err != nil || host == "" || !validPort(port) {
			v.Add("bootstrapServers", "%q is not host:port", s)
		}
	}
	c.validateAuth(&v)
	c.validateTLS(&v)
	if c.AllowIdleConsumers && c.LimitToPartitionsWithLag {
		v.Add("limitToPartitionsWithLag", "cannot be used with allowIdleConsumers")
	}
	if c.AllowIdleConsumers && c.EnsureEvenDistributionOfPartitions {
		v.Add("ensureEvenDistributionOfPartitions", "cannot be used with allowIdleConsumers")
	}
	if c.LimitToPartitionsWithLag && len(c.Topics) == 0 {
		v.Add("limitToPartitionsWithLag", "needs topic, as in KEDA: set topic to the topics whose partitions with lag cap the replicas, or remove limitToPartitionsWithLag")
	}
	if len(c.PartitionLimitation) > 0 && len(c.Topics) == 0 {
		v.Add("partitionLimitation", "needs topic: without it the partitions it names are ambiguous")
	}
	return v
}

func (c *Config) validateAuth(v *sources.Problems) {
	if c.mechanism() == "none" {
		return
	}
	if c.Username == "" {
		v.Missing("username", "is required when sasl is %s", c.SASL)
	}
	if c.Password == "" {
		v.Missing("password", "is required when sasl is %s (set it in the Secret)", c.SASL)
	}
}

func (c *Config) validateTLS(v *sources.Problems) {
	if !c.tlsEnabled() {
		for _, p := range []struct{ name, value string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
			if p.value != "" {
				v.Add(p.name, "is set but tls is not enable")
			}
		}
		return
	}
	if (c.Cert == "") != (c.Key == "") {
		v.Add("cert", "cert and key must be given together")
		return
	}
	if _, err := c.tlsConfig(); err != nil {
		v.Add("tls", "%v", err)
	}
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// PartitionSet is the parsed partitionLimitation: "1,2,10-20" holds 1, 2 and 10 to 20.
type PartitionSet []PartitionRange

// PartitionRange is an inclusive range of partition numbers.
type PartitionRange struct{ From, To int32 }

// UnmarshalText parses a comma-separated list of partition numbers and ranges.
func (s *PartitionSet) UnmarshalText(text []byte) error {
	var set PartitionSet
	for _, item := range sources.SplitList(string(text)) {
		lo, hi, isRange := strings.Cut(item, "-")
		from, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		to, err2 := from, error(nil)
		if isRange {
			to, err2 = strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
		}
		if err1 != nil || err2 != nil || from < 0 || to < from {
			return fmt.Errorf("must list partitions and ranges such as 1,2,10-20; %q is not one", item)
		}
		set = append(set, PartitionRange{int32(from), int32(to)})
	}
	*s = set
	return nil
}

// Contains reports whether p is in the set; an empty set contains every partition.
func (s PartitionSet) Contains(p int32) bool {
	if len(s) == 0 {
		return true
	}
	for _, r := range s {
		if p >= r.From && p <= r.To {
			return true
		}
	}
	return false
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	return sources.TLSMaterial{
		CA: c.CA, Cert: c.Cert, Key: c.Key, KeyPassword: c.KeyPassword, InsecureSkipVerify: c.UnsafeSSL,
	}.Config()
}
