package rabbitmq

import (
	"fmt"

	"github.com/qscale/qscale/sources"
)

// Validate implements sources.Config.
func (c *Config) Validate() []sources.FieldError {
	var v validation
	if c.Host.problem != "" {
		v.add("host", "%s", c.Host.problem)
		return v.problems // every other check reads the URL
	}
	c.validateHost(&v)
	c.validateMode(&v)
	c.validateHTTPOnly(&v)
	c.validateAuth(&v)
	c.validateTLS(&v)
	if c.PageSize > maxPageSize {
		v.add("pageSize", "must be at most %d, the largest page the management API serves", maxPageSize)
	}
	if _, err := c.matcher(); err != nil {
		v.add("queueName", "is not a valid regular expression (Go RE2 syntax): %v", err)
	}
	return v.problems
}

type validation struct{ problems []sources.FieldError }

func (v *validation) add(param, format string, args ...any) {
	v.problems = append(v.problems, sources.FieldError{Param: param, Problem: fmt.Sprintf(format, args...)})
}

// missing records a parameter that must be set, which a Secret may supply.
func (v *validation) missing(param, format string, args ...any) {
	v.problems = append(v.problems, sources.FieldError{Param: param, Problem: fmt.Sprintf(format, args...), Missing: true})
}

func (c *Config) validateHost(v *validation) {
	if c.Host.inMetadata && c.Host.hasPassword() {
		v.add("host", "holds a password: put host in the Secret named by authenticationRef, or put username and password there and leave them out of the URL")
	}
	switch {
	case c.Protocol == protocolAMQP && !c.Host.amqpScheme():
		v.add("protocol", "is amqp but host is an http(s):// URL: give the broker's amqp:// URL")
	case c.Protocol == protocolHTTP && c.Host.amqpScheme():
		v.add("protocol", "is http but host is an amqp(s):// URL: give the management API's http(s):// URL")
	}
}

// validateMode checks the target: KEDA's queueLength is the deprecated spelling of
// mode: QueueLength with value, so it may not be combined with them.
func (c *Config) validateMode(v *validation) {
	if c.QueueLength > 0 && (c.Mode != "" || c.Value > 0) {
		v.add("queueLength", "is the deprecated form of mode: QueueLength with value; set either queueLength or mode and value")
	}
	if c.Mode == ModeMessageRate && c.Value == 0 {
		v.missing("value", "is required when mode is MessageRate: the publish rate (messages/s) per replica")
	}
}

// validateHTTPOnly rejects what only the management API can read.
func (c *Config) validateHTTPOnly(v *validation) {
	if c.protocol() == protocolHTTP {
		return
	}
	if c.mode() == ModeMessageRate {
		v.add("mode", "MessageRate needs the management API: give an http(s):// host (protocol http); AMQP reads queue depth only")
	}
	if c.UseRegex {
		v.add("useRegex", "needs the management API: give an http(s):// host (protocol http); AMQP reads one named queue")
	}
}

func (c *Config) validateAuth(v *validation) {
	switch {
	case c.Username != "" && c.Password == "":
		v.missing("password", "is required when username is set (set it in the Secret)")
	case c.Password != "" && c.Username == "":
		v.missing("username", "is required when password is set")
	}
}

func (c *Config) validateTLS(v *validation) {
	if c.TLS != "enable" {
		for _, p := range []struct{ name, value string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
			if p.value != "" {
				v.add(p.name, "is set but tls is not enable")
			}
		}
		return
	}
	if !c.Host.secure() {
		v.add("tls", "is enable but host is not an amqps:// or https:// URL")
	}
	if (c.Cert == "") != (c.Key == "") {
		v.add("cert", "cert and key must be given together")
		return
	}
	if _, err := c.tlsConfig(); err != nil {
		v.add("tls", "%v", err)
	}
}
