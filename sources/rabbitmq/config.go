package rabbitmq

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/qscale/qscale/sources"
)

// Modes and protocols, KEDA's spelling.
const (
	ModeQueueLength = "QueueLength"
	ModeMessageRate = "MessageRate"

	protocolAMQP = "amqp"
	protocolHTTP = "http"
)

// defaultQueueLength is the target per replica when neither value nor queueLength is set,
// as in KEDA.
const defaultQueueLength = 20

// defaultTimeout bounds one poll when timeout is not set. It is longer than the 3 s by which
// RabbitMQ delays refusing a login, so that a wrong password is reported as one.
const defaultTimeout = 5 * time.Second

// maxPageSize is the largest page the management API serves; it answers 400 above it.
const maxPageSize = 500

// Config is a rabbitmq trigger's parameters, with KEDA's names and defaults.
type Config struct {
	Host                  HostURL `param:"host,required"`
	Protocol              string  `param:"protocol,default=auto,enum=auto|amqp|http"`
	QueueName             string  `param:"queueName,required"`
	Mode                  string  `param:"mode,enum=QueueLength|MessageRate"`
	Value                 float64 `param:"value,positive"`
	QueueLength           float64 `param:"queueLength,positive"` // KEDA's deprecated form of mode: QueueLength + value
	ActivationValue       float64 `param:"activationValue,default=0,min=0"`
	VhostName             string  `param:"vhostName"`
	UseRegex              bool    `param:"useRegex"`
	Operation             string  `param:"operation,default=sum,enum=sum|max|avg"`
	ExcludeUnacknowledged bool    `param:"excludeUnacknowledged"`
	PageSize              int     `param:"pageSize,default=100,min=1"`
	Timeout               Millis  `param:"timeout"`
	Username              string  `param:"username"`
	Password              string  `param:"password,secret"`
	TLS                   string  `param:"tls,default=disable,enum=enable|disable"`
	CA                    string  `param:"ca"`
	Cert                  string  `param:"cert"`
	Key                   string  `param:"key,secret"`
	KeyPassword           string  `param:"keyPassword,secret"`
	UnsafeSSL             bool    `param:"unsafeSsl"`
	HostFromEnv           FromEnv `param:"hostFromEnv"`
	UsernameFromEnv       FromEnv `param:"usernameFromEnv"`
	PasswordFromEnv       FromEnv `param:"passwordFromEnv"`

	// BacklogAge is targetBacklogAge, which replaces value and queueLength, and
	// replicaThroughput. It needs the management API.
	sources.BacklogAge
}

var _ sources.Config = (*Config)(nil)

// Target implements sources.Config: queue length or publish rate per replica.
func (c *Config) Target() float64 {
	switch {
	case c.Value > 0:
		return c.Value
	case c.QueueLength > 0:
		return c.QueueLength
	}
	return defaultQueueLength
}

// mode returns the trigger mode; without mode, queueLength or value it is QueueLength.
func (c *Config) mode() string {
	if c.Mode == "" {
		return ModeQueueLength
	}
	return c.Mode
}

// protocol returns amqp or http: protocol when set, else the host URL's scheme.
func (c *Config) protocol() string {
	if c.Protocol != "auto" {
		return c.Protocol
	}
	if c.Host.amqpScheme() {
		return protocolAMQP
	}
	return protocolHTTP
}

// vhost returns the vhost the trigger reads: vhostName, else the one in the host URL.
func (c *Config) vhost() string {
	if c.VhostName != "" {
		return c.VhostName
	}
	return c.Host.endpoint().vhost
}

// credentials returns the user and password to log in with: username and password when both
// are set (KEDA lets them override the URL's), else those in the URL.
func (c *Config) credentials() (user, password string) {
	if c.Username != "" && c.Password != "" {
		return c.Username, c.Password
	}
	return c.Host.user()
}

// timeout returns how long one poll may wait for the broker.
func (c *Config) timeout() time.Duration { return time.Duration(c.Timeout) }

// Connection implements sources.Config. AMQP triggers share a connection per broker, vhost
// and credentials (an AMQP connection is bound to one vhost); HTTP triggers share a client
// per management endpoint and credentials, whatever vhost they read. Secrets appear only as
// a digest.
func (c *Config) Connection() string {
	e := c.Host.endpoint()
	user, password := c.credentials()
	h := sha256.New()
	for _, s := range []string{password, c.CA, c.Cert, c.Key, c.KeyPassword} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	key := fmt.Sprintf("%s %s user=%q tls=%s unsafe=%t auth=%s",
		c.protocol(), e.base(), user, c.TLS, c.UnsafeSSL, hex.EncodeToString(h.Sum(nil)[:12]))
	if c.protocol() == protocolAMQP {
		key += fmt.Sprintf(" vhost=%q", c.vhost())
	}
	return key
}

// matcher returns how the trigger picks queues by name. RabbitMQ matches its name filter
// without regard to case, so a regex does too.
func (c *Config) matcher() (queueMatcher, error) {
	if !c.UseRegex {
		return queueMatcher{name: c.QueueName}, nil
	}
	re, err := regexp.Compile("(?i)" + c.QueueName)
	if err != nil {
		return queueMatcher{}, err
	}
	return queueMatcher{pattern: c.QueueName, re: re}, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	m := sources.TLSMaterial{InsecureSkipVerify: c.UnsafeSSL}
	if c.TLS == "enable" {
		m.CA, m.Cert, m.Key, m.KeyPassword = c.CA, c.Cert, c.Key, c.KeyPassword
	}
	return m.Config()
}

// Millis is a duration given as KEDA gives timeouts: a whole number of milliseconds, or a
// Go duration such as 1.5s. It must be above 0.
type Millis time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Millis) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	d, err := time.ParseDuration(s)
	if err != nil {
		ms, err2 := strconv.ParseInt(s, 10, 64)
		if err2 != nil {
			return errors.New("must be a number of milliseconds or a duration such as 1.5s")
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return errors.New("must be greater than 0")
	}
	*m = Millis(d)
	return nil
}

// FromEnv is the type of KEDA's hostFromEnv, usernameFromEnv and passwordFromEnv. They name
// environment variables of the workload's containers, which qscale does not read: setting
// one is an error that says where the value goes instead, rather than "unknown parameter".
type FromEnv struct{}

// UnmarshalText implements encoding.TextUnmarshaler: every value is refused.
func (*FromEnv) UnmarshalText([]byte) error {
	return errors.New("is not supported: qscale does not read the workload's environment; put the value in the Secret named by authenticationRef")
}
