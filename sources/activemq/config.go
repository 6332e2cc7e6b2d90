package activemq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/qscale/qscale/sources"
)

// Protocols: Jolokia is what KEDA reads; STOMP reads the statistics plugin, for brokers
// without the web console.
const (
	ProtocolJolokia = "jolokia"
	ProtocolSTOMP   = "stomp"
)

// Config is an activemq trigger's parameters, with KEDA's names and defaults, plus
// qscale's protocol and stompEndpoint.
type Config struct {
	ManagementEndpoint        string  `param:"managementEndpoint"`
	DestinationName           string  `param:"destinationName"`
	BrokerName                string  `param:"brokerName"`
	TargetQueueSize           float64 `param:"targetQueueSize,default=10,positive"`
	ActivationTargetQueueSize float64 `param:"activationTargetQueueSize,default=0,min=0"`
	RestAPITemplate           string  `param:"restAPITemplate"`
	CorsHeader                string  `param:"corsHeader"`
	Username                  string  `param:"username"`
	Password                  string  `param:"password,secret"`
	Protocol                  string  `param:"protocol,default=jolokia,enum=jolokia|stomp"`
	StompEndpoint             string  `param:"stompEndpoint"`

	// BacklogAge is targetBacklogAge, which replaces targetQueueSize, and replicaThroughput.
	sources.BacklogAge

	// read is the Jolokia request of a jolokia trigger, rendered from the parameters by
	// Compile. It is set once, when the trigger is parsed, and never changed: two configs
	// parsed from the same parameters stay equal (reflect.DeepEqual) however they are used,
	// which is how the scaler tells an unchanged trigger from a changed one.
	read jolokiaRead
}

var (
	_ sources.Config   = (*Config)(nil)
	_ sources.Compiler = (*Config)(nil)
)

// Target implements sources.Config: queue size per replica.
func (c *Config) Target() float64 { return c.TargetQueueSize }

// Connection implements sources.Config. Jolokia triggers share a keep-alive HTTP client per
// scheme, endpoint and credentials; STOMP triggers share one connection per endpoint and
// credentials. The password appears only as a digest.
func (c *Config) Connection() string {
	h := sha256.Sum256([]byte(c.Password))
	auth := hex.EncodeToString(h[:12])
	if c.Protocol == ProtocolSTOMP {
		return fmt.Sprintf("stomp %s user=%q auth=%s", c.StompEndpoint, c.Username, auth)
	}
	return fmt.Sprintf("jolokia %s user=%q auth=%s", c.read.base(), c.Username, auth)
}

// Compile implements sources.Compiler: it renders the Jolokia request of a jolokia trigger,
// which Validate has checked renders. A stomp trigger has nothing to prepare.
func (c *Config) Compile() []sources.FieldError {
	if c.Protocol == ProtocolSTOMP {
		return nil
	}
	read, problems := c.compileRead()
	if len(problems) > 0 {
		return problems
	}
	c.read = read
	return nil
}

// active reports whether a queue size is above the activation threshold, as in KEDA.
func (c *Config) active(size float64) bool { return size > c.ActivationTargetQueueSize }
