package rabbitmq

import (
	"github.com/qscale/qscale/sources"
)

// Validate implements sources.Config.
func (c *Config) Validate() []sources.FieldError {
	var v sources.Problems
	if c.Host.problem != "" {
		v.Add("host", "%s", c.Host.problem)
	}
	if c.Host.u != nil { // without a URL (missing, or refused) the other checks still run
		c.validateHost(&v)
	}
	c.validateHTTPOnly(&v) // protocol auto without a URL reads as http: nothing refused
	c.validateMode(&v)
	v.Login(c.Username, c.Password)
	c.validateTLS(&v)
	if c.PageSize > maxPageSize {
		v.Add("pageSize", "must be at most %d, the largest page the management API serves", maxPageSize)
	}
	if _, err := c.matcher(); err != nil {
		v.Add("queueName", "is not a valid regular expression (Go RE2 syntax): %v", err)
	}
	return v
}

func (c *Config) validateHost(v *sources.Problems) {
	if c.Host.inMetadata && c.Host.hasPassword() {
		v.Add("host", "holds a password: put host in the Secret named by authenticationRef, or put username and password there and leave them out of the URL")
	}
	switch {
	case c.Protocol == protocolAMQP && !c.Host.amqpScheme():
		v.Add("protocol", "is amqp but host is an http(s):// URL: give the broker's amqp:// URL")
	case c.Protocol == protocolHTTP && c.Host.amqpScheme():
		v.Add("protocol", "is http but host is an amqp(s):// URL: give the management API's http(s):// URL")
	}
}

// validateMode checks the target: KEDA's queueLength is the deprecated spelling of
// mode: QueueLength with value, so it may not be combined with them.
func (c *Config) validateMode(v *sources.Problems) {
	if c.QueueLength > 0 && (c.Mode != "" || c.Value > 0) {
		v.Add("queueLength", "is the deprecated form of mode: QueueLength with value; set either queueLength or mode and value")
	}
	switch {
	case c.Mode == ModeMessageRate && c.ScalesOnBacklogAge():
		v.Add("mode", "MessageRate cannot be used with %s, which scales on the rates at which messages arrive and are consumed itself", sources.BacklogAgeParam)
	case c.Mode == ModeMessageRate && c.Value == 0:
		v.Missing("value", "is required when mode is MessageRate: the publish rate (messages/s) per replica")
	}
}

// validateHTTPOnly rejects what only the management API can read.
func (c *Config) validateHTTPOnly(v *sources.Problems) {
	if c.protocol() == protocolHTTP {
		return
	}
	if c.mode() == ModeMessageRate {
		v.Add("mode", "MessageRate needs the management API: give an http(s):// host (protocol http); AMQP reads queue depth only")
	}
	if c.UseRegex {
		v.Add("useRegex", "needs the management API: give an http(s):// host (protocol http); AMQP reads one named queue")
	}
	if c.ScalesOnBacklogAge() {
		v.Add(sources.BacklogAgeParam, "needs the management API: use an http(s):// host (protocol http); AMQP reads no counts of messages published and consumed")
	}
}

func (c *Config) validateTLS(v *sources.Problems) {
	if c.TLS != "enable" {
		for _, p := range []struct{ name, value string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
			if p.value != "" {
				v.Add(p.name, "is set but tls is not enable")
			}
		}
		return
	}
	if c.Host.u != nil && !c.Host.secure() {
		v.Add("tls", "is enable but host is not an amqps:// or https:// URL")
	}
	if (c.Cert == "") != (c.Key == "") {
		v.Add("cert", "cert and key must be given together")
		return
	}
	if _, err := c.tlsConfig(); err != nil {
		v.Add("tls", "%v", err)
	}
}
