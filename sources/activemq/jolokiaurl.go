package activemq

import (
	"bytes"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/qscale/qscale/sources"
)

// defaultRestAPITemplate is KEDA's URL of a queue's size in Jolokia, under ActiveMQ's web
// console.
const defaultRestAPITemplate = "http://{{.ManagementEndpoint}}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize"

// jolokiaRead is one trigger's Jolokia request, rendered from its parameters.
type jolokiaRead struct {
	url    string // the GET URL; never holds credentials
	scheme string // http or https
	host   string // host:port as the URL names it
	broker string // brokerName: the parameter, or the URL's when only it names one
	queue  string // destinationName, likewise
	origin string // the Origin header: corsHeader, or KEDA's default http://<host>
	agent  string // the agent's URL (what precedes /read/), "" when the URL reads otherwise
	// mbean and attribute are what the URL reads, for a bulk request: set only when the URL
	// is a plain read of one attribute through a known agent, which a bulk entry makes
	// exactly as the GET does. Other reads (an inner path, query options) stay GETs.
	mbean, attribute string
	// counts marks the read of a backlog-age trigger, which reads countAttributes (QueueSize
	// among them) of mbean in one read; its url lists them all.
	counts bool
}

// base is scheme://host: what errors name and connections are keyed by.
func (r *jolokiaRead) base() string { return r.scheme + "://" + r.host }

// key tells requests apart: triggers with equal keys are served by one request.
func (r *jolokiaRead) key() string { return r.url + "\x00" + r.origin }

// templateFields are the names restAPITemplate may use, and the parameters they stand for.
var templateFields = []struct{ name, param string }{
	{"ManagementEndpoint", "managementEndpoint"},
	{"BrokerName", "brokerName"},
	{"DestinationName", "destinationName"},
}

// compileRead renders the Jolokia URL from restAPITemplate (KEDA's default when unset) and
// the parameters, and checks it. A template may use the parameters or spell the endpoint,
// broker and queue out itself, as KEDA allows; where it does both they must agree. Broker
// and queue names are escaped for Jolokia's URL syntax; problems never quote a URL that
// holds credentials.
func (c *Config) compileRead() (jolokiaRead, sources.Problems) {
	var v sources.Problems
	param, text := "restAPITemplate", c.RestAPITemplate
	if text == "" {
		// KEDA's URL is sound: what can break it is the endpoint filled in.
		param, text = "managementEndpoint", defaultRestAPITemplate
	}
	raw, ok := c.render(&v, text)
	if !ok {
		return jolokiaRead{}, v
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.Add(param, "does not render a URL") // url's errors quote the input, which may hold a password
	case u.User != nil:
		v.Add(param, "holds credentials: put username and password in the Secret named by authenticationRef instead")
	case u.Scheme != "http" && u.Scheme != "https":
		v.Add(param, "must render an http:// or https:// URL, got %q", raw)
	case u.Host == "":
		v.Add(param, "renders a URL without a host: %q", raw)
	}
	if len(v) > 0 {
		return jolokiaRead{}, v
	}
	r := newRead(raw, u, c.CorsHeader)
	props := mbeanProperties(u.Path)
	r.broker = c.agree(&v, "brokerName", c.BrokerName, props["brokerName"])
	r.queue = c.agree(&v, "destinationName", c.DestinationName, props["destinationName"])
	if c.ManagementEndpoint != "" && c.ManagementEndpoint != u.Host {
		v.Add("managementEndpoint", "is %q but restAPITemplate reads from %q", c.ManagementEndpoint, u.Host)
	}
	if r.queue != "" {
		checkQueueName(&v, r.queue)
	}
	if c.ScalesOnBacklogAge() {
		r.countsRead(&v, u)
	}
	return r, v
}

// countsRead makes r the read of a backlog-age trigger: QueueSize, EnqueueCount and
// DequeueCount in one read, by GET /read/<mbean>/QueueSize,EnqueueCount,DequeueCount (Jolokia
// reads a comma-separated list of attributes) or in a bulk request. The URL must be a plain
// read of QueueSize, as KEDA's is.
func (r *jolokiaRead) countsRead(v *sources.Problems, u *url.URL) {
	if r.mbean == "" || r.attribute != countAttributes[0] {
		v.Add(sources.BacklogAgeParam, "needs restAPITemplate to read QueueSize of a queue's MBean through Jolokia (…/read/<MBean>/QueueSize, "+
			"without query options), as KEDA's default does: the counts of messages enqueued and dequeued are read with it")
		return
	}
	r.counts = true
	r.url = r.base() + u.EscapedPath() + "," + strings.Join(countAttributes[1:], ",")
}

// newRead is the read of url raw, parsed as u, with the Origin header origin (KEDA's default
// http://<host> when empty): the agent and what it reads are found in the URL.
func newRead(raw string, u *url.URL, origin string) jolokiaRead {
	r := jolokiaRead{url: raw, scheme: u.Scheme, host: u.Host, origin: origin}
	if r.origin == "" {
		r.origin = "http://" + u.Host
	}
	if i := strings.Index(u.EscapedPath(), "/read/"); i >= 0 {
		r.agent = r.base() + u.EscapedPath()[:i]
		if u.RawQuery == "" {
			r.mbean, r.attribute = readTarget(u.Path)
		}
	}
	return r
}

// render executes the template. A field whose parameter is not set renders as a marker, so
// that the problem can name the parameter.
func (c *Config) render(v *sources.Problems, text string) (string, bool) {
	t, err := template.New("restAPITemplate").Parse(text)
	if err != nil {
		v.Add("restAPITemplate", "is not a valid template: %v", err)
		return "", false
	}
	if !onlyFields(t.Tree) {
		v.Add("restAPITemplate", "may only use {{.ManagementEndpoint}}, {{.BrokerName}} and {{.DestinationName}}")
		return "", false
	}
	values := map[string]string{
		"ManagementEndpoint": c.ManagementEndpoint,
		"BrokerName":         jolokiaEscape(c.BrokerName),
		"DestinationName":    jolokiaEscape(c.DestinationName),
	}
	for _, f := range templateFields {
		if values[f.name] == "" {
			values[f.name] = unsetMarker(f.name)
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, values); err != nil {
		v.Add("restAPITemplate", "%v", err)
		return "", false
	}
	out := buf.String()
	for _, f := range templateFields {
		if strings.Contains(out, unsetMarker(f.name)) {
			v.Missing(f.param, "is required: restAPITemplate uses {{.%s}}", f.name)
		}
	}
	return out, len(*v) == 0
}

// onlyFields reports whether a template is text and references to the known fields, nothing
// else: a template comes from an annotation, and one with a loop could keep qscale busy.
func onlyFields(tree *parse.Tree) bool {
	if tree == nil || tree.Root == nil {
		return true // an empty template
	}
	for _, n := range tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if !isKnownField(n.Pipe) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isKnownField(p *parse.PipeNode) bool {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return false
	}
	for _, k := range templateFields {
		if f.Ident[0] == k.name {
			return true
		}
	}
	return false
}

func unsetMarker(field string) string { return "\x00unset-" + field + "\x00" }

// agree returns a name given by a parameter, or by the URL when the parameter is not set.
func (c *Config) agree(v *sources.Problems, param, fromParam, fromURL string) string {
	switch {
	case fromParam != "" && fromURL != "" && fromParam != fromURL:
		v.Add(param, "is %q but restAPITemplate reads %s %q", fromParam, param, fromURL)
	case fromParam != "":
		return fromParam
	case fromURL != "":
		return fromURL
	default:
		v.Missing(param, "is required: set it, or spell it out in restAPITemplate (%s=…)", param)
	}
	return ""
}

// mbeanProperties returns the key properties of the MBean name in a Jolokia read path,
// such as /api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b/QueueSize: what
// follows the first colon up to the next unescaped slash, in Jolokia's escaping ("!/" is a
// slash, "!!" an exclamation mark). A path without a colon has none.
func mbeanProperties(path string) map[string]string {
	_, rest, ok := strings.Cut(path, ":")
	if !ok {
		return nil
	}
	var name strings.Builder
	for i := 0; i < len(rest); i++ {
		ch := rest[i]
		if ch == '!' && i+1 < len(rest) {
			i++
			name.WriteByte(rest[i])
			continue
		}
		if ch == '/' {
			break
		}
		name.WriteByte(ch)
	}
	props := map[string]string{}
	for _, kv := range strings.Split(name.String(), ",") {
		if k, val, ok := strings.Cut(kv, "="); ok {
			props[k] = val
		}
	}
	return props
}

// readTarget returns the MBean and attribute that a Jolokia read path such as
// /api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b/QueueSize names, unescaped
// as Jolokia unescapes them ("!" makes the next character literal). A path that names
// anything else, such as an inner path below the attribute, returns "".
func readTarget(path string) (mbean, attribute string) {
	_, rest, ok := strings.Cut(path, "/read/")
	if !ok {
		return "", ""
	}
	parts := splitJolokiaPath(rest)
	if len(parts) != 2 || !strings.Contains(parts[0], ":") || parts[1] == "" {
		return "", ""
	}
	return parts[0], parts[1]
}

// splitJolokiaPath splits a Jolokia GET path at its unescaped slashes.
func splitJolokiaPath(path string) []string {
	var parts []string
	var part strings.Builder
	for i := 0; i < len(path); i++ {
		ch := path[i]
		switch {
		case ch == '!' && i+1 < len(path):
			i++
			part.WriteByte(path[i])
		case ch == '/':
			parts = append(parts, part.String())
			part.Reset()
		default:
			part.WriteByte(ch)
		}
	}
	return append(parts, part.String())
}

// jolokiaEscape escapes a name for a Jolokia GET path: "!" and "/" are escaped with "!" (a
// plain slash would end the MBean name), then the result is escaped as a URL path segment.
func jolokiaEscape(s string) string {
	return url.PathEscape(strings.NewReplacer("!", "!!", "/", "!/").Replace(s))
}

// checkQueueName refuses names that ActiveMQ reads as several destinations: a comma
// separates a composite destination, * and > are wildcards. A statistics query for such a
// name would reach other queues, and a Jolokia read would match several MBeans.
func checkQueueName(v *sources.Problems, name string) {
	if strings.ContainsAny(name, ",*>") {
		v.Add("destinationName", "must name one queue: ActiveMQ reads a comma as a list of destinations and * and > as wildcards, got %q", name)
	}
}
