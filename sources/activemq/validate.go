package activemq

import (
	"net"
	"strconv"
	"strings"

	"github.com/qscale/qscale/sources"
)

// Validate implements sources.Config.
func (c *Config) Validate() []sources.FieldError {
	var v sources.Problems
	v.Login(c.Username, c.Password)
	if c.Protocol == ProtocolSTOMP {
		c.validateSTOMP(&v)
	} else {
		c.validateJolokia(&v)
	}
	return v
}

// validateJolokia checks what KEDA checks: either managementEndpoint, brokerName and
// destinationName, or a restAPITemplate that, with them, names all three.
func (c *Config) validateJolokia(v *sources.Problems) {
	if c.StompEndpoint != "" {
		v.Add("stompEndpoint", "is read by protocol stomp only; protocol is jolokia (set protocol: stomp to read the statistics plugin)")
	}
	n := len(*v)
	if c.ManagementEndpoint != "" {
		checkHostPort(v, "managementEndpoint", c.ManagementEndpoint, "activemq:8161")
	}
	if c.RestAPITemplate == "" {
		for _, p := range []struct{ name, value string }{
			{"managementEndpoint", c.ManagementEndpoint}, {"brokerName", c.BrokerName}, {"destinationName", c.DestinationName},
		} {
			if p.value == "" {
				v.Missing(p.name, "is required (or give restAPITemplate)")
			}
		}
	}
	if len(*v) > n {
		return // the URL would be rendered from them
	}
	_, problems := c.compileRead()
	*v = append(*v, problems...)
}

// validateSTOMP checks a statistics-plugin trigger, and refuses the Jolokia parameters,
// which it would not read.
func (c *Config) validateSTOMP(v *sources.Problems) {
	if c.StompEndpoint == "" {
		v.Missing("stompEndpoint", "is required when protocol is stomp")
	} else {
		checkHostPort(v, "stompEndpoint", c.StompEndpoint, "activemq:61613")
	}
	if c.DestinationName == "" {
		v.Missing("destinationName", "is required")
	} else {
		checkQueueName(v, c.DestinationName)
	}
	for _, p := range []struct{ name, value string }{
		{"managementEndpoint", c.ManagementEndpoint}, {"restAPITemplate", c.RestAPITemplate}, {"corsHeader", c.CorsHeader},
	} {
		if p.value != "" {
			v.Add(p.name, "is read by protocol jolokia only; protocol is stomp, which reads stompEndpoint")
		}
	}
}

func checkHostPort(v *sources.Problems, param, value, example string) {
	if strings.Contains(value, "://") {
		v.Add(param, "must be host:port such as %s, without a scheme, got %q", example, value)
		return
	}
	host, port, err := net.SplitHostPort(value)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		v.Add(param, "must be host:port such as %s, got %q", example, value)
	}
}
