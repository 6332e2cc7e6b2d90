package rabbitmq

import (
	"net"
	"net/url"
	"strings"
)

// HostURL is the host parameter: an amqp://, amqps://, http:// or https:// URL whose path
// names the vhost (and, for http, a path prefix in front of /api). It keeps the URL it was
// given but prints only a redacted form, because the URL may hold a password.
//
// UnmarshalText never fails: Decode would quote the rejected value in its message, password
// included. The problem is kept and reported, redacted, by Config.Validate.
type HostURL struct {
	u       *url.URL
	problem string
	// inMetadata records that the URL came from the trigger's metadata, not from its Secret.
	// sources.Decode tells it through SetFromSecret.
	inMetadata bool
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HostURL) UnmarshalText(text []byte) error {
	*h = HostURL{inMetadata: h.inMetadata}
	u, err := url.Parse(strings.TrimSpace(string(text)))
	switch {
	case err != nil:
		// url's errors quote the whole input, password included.
		h.problem = "is not a URL such as amqp://rabbitmq:5672/vhost or http://rabbitmq:15672/vhost"
	case u.Scheme != "amqp" && u.Scheme != "amqps" && u.Scheme != "http" && u.Scheme != "https":
		h.problem = "must be an amqp://, amqps://, http:// or https:// URL, got " + schemeOf(u)
	case u.Hostname() == "":
		h.problem = "names no host, got " + u.Redacted()
	default:
		h.u = u
	}
	return nil
}

// SetFromSecret tells the parameter where its value came from. A URL holding a password is
// refused in metadata: annotations are readable by anyone who can read the workload.
func (h *HostURL) SetFromSecret(fromSecret bool) { h.inMetadata = !fromSecret }

// String returns the URL without its password.
func (h HostURL) String() string {
	if h.u == nil {
		return ""
	}
	return h.u.Redacted()
}

func (h HostURL) hasPassword() bool {
	if h.u == nil || h.u.User == nil {
		return false
	}
	_, ok := h.u.User.Password()
	return ok
}

// amqpScheme reports whether the URL is amqp:// or amqps://.
func (h HostURL) amqpScheme() bool { return h.u != nil && strings.HasPrefix(h.u.Scheme, "amqp") }

// secure reports whether the URL asks for TLS.
func (h HostURL) secure() bool { return h.u != nil && (h.u.Scheme == "amqps" || h.u.Scheme == "https") }

// user returns the user name and password in the URL, if any.
func (h HostURL) user() (name, password string) {
	if h.u == nil || h.u.User == nil {
		return "", ""
	}
	password, _ = h.u.User.Password()
	return h.u.User.Username(), password
}

// endpoint is where a host URL points, without credentials: what errors name and what
// connections are keyed by.
type endpoint struct {
	scheme string // amqp, amqps, http or https
	addr   string // host:port, with the scheme's default port filled in
	prefix string // http only: the path in front of /api, "" or "/…" without a trailing slash
	vhost  string // from the URL's path; "/" when the path names none
}

// base is scheme://host:port[prefix]: safe to print.
func (e endpoint) base() string { return e.scheme + "://" + e.addr + e.prefix }

var defaultPorts = map[string]string{"amqp": "5672", "amqps": "5671", "http": "80", "https": "443"}

// endpoint splits the URL the way KEDA reads it: for amqp the whole path is the vhost; for
// http the last path segment is the vhost and what precedes it a path prefix. An empty
// vhost means the default vhost "/", which URLs spell %2F.
func (h HostURL) endpoint() endpoint {
	if h.u == nil {
		return endpoint{}
	}
	e := endpoint{scheme: h.u.Scheme, addr: h.u.Host, vhost: "/"}
	if h.u.Port() == "" {
		e.addr = net.JoinHostPort(h.u.Hostname(), defaultPorts[h.u.Scheme])
	}
	p := h.u.EscapedPath()
	var vhost string
	if h.amqpScheme() {
		vhost = strings.TrimPrefix(p, "/")
	} else {
		i := strings.LastIndex(p, "/")
		if i >= 0 {
			e.prefix, vhost = strings.TrimSuffix(p[:i], "/"), p[i+1:]
		}
	}
	if v, err := url.PathUnescape(vhost); err == nil && v != "" {
		e.vhost = v
	}
	return e
}

func schemeOf(u *url.URL) string {
	if u.Scheme == "" {
		return "no scheme"
	}
	return "scheme " + u.Scheme
}
