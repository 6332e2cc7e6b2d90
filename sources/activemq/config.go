package activemq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

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

	// read is the Jolokia request, rendered once from the parameters on first use: Validate
	// has checked that it renders.
	readOnce sync.Once
	read     jolokiaRead
}

var _ sources.Config = (*Config)(nil)

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
	return fmt.Sprintf("jolokia %s user=%q auth=%s", c.jolokia().base(), c.Username, auth)
}

// jolokia returns the trigger's Jolokia request. Only for a validated jolokia trigger.
func (c *Config) jolokia() *jolokiaRead {
	c.readOnce.Do(func() {
		c.read, _ = c.compileRead() // Validate reported any error
	})
	return &c.read
}

// active reports whether a queue size is above the activation threshold, as in KEDA.
func (c *Config) active(size float64) bool { return size > c.ActivationTargetQueueSize }
