package rabbitmq

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// marker stands for a secret that a hostile answer carries: no error may repeat it.
const marker = "SECRET-7f3a"

// An error says what went wrong in words of ours and the code the broker sent, never in the
// broker's words: its reason, a certificate's names, a malformed answer's first line.
func TestErrorsKeepTheBrokersWordsOut(t *testing.T) {
	const where = `amqp://rabbit:5672 (vhost "v")`
	reply := func(code int) error {
		return fmt.Errorf("wrapped: %w", &amqp.Error{Code: code, Reason: "REASON - " + marker, Server: true})
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "a channel closed for a precondition", err: explainAMQP(reply(amqp.PreconditionFailed), where, "u"),
			want: "RabbitMQ at " + where + ": AMQP reply 406 PRECONDITION_FAILED (a precondition failed)"},
		{name: "an unknown vhost", err: explainAMQP(reply(amqp.NotAllowed), where, "u"),
			want: `RabbitMQ at ` + where + ` refused the vhost (it does not exist, or user "u" has no permission on it): AMQP reply 530 NOT_ALLOWED (not allowed)`},
		{name: "a connection closed by an operator", err: explainAMQP(reply(amqp.ConnectionForced), where, "u"),
			want: "connection to " + where + " was closed (broker restart or connection closed by an operator); the next poll reconnects: AMQP reply 320 CONNECTION_FORCED (an operator or a broker shutdown closed the connection)"},
		{name: "a code AMQP does not have", err: explainAMQP(reply(999), where, "u"),
			want: "RabbitMQ at " + where + ": AMQP reply 999 (not a reply code of AMQP 0-9-1)"},
		{name: "amqp091's own error keeps its reason", err: explainAMQP(amqp.ErrCredentials, where, "u"),
			want: `RabbitMQ at ` + where + ` refused the login of user "u": wrong username or password: AMQP client error 403: username or password not allowed`},
		{name: "a malformed HTTP answer", err: explainDial(errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "`+marker+`"`), "the management API at http://x:1"),
			want: "the management API at http://x:1: the answer does not follow the protocol (is this the broker's port?)"},
		{name: "a certificate for other names", err: explainDial(x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{marker}}, Host: "x"}, "https://x:1"),
			want: "TLS: the certificate of https://x:1 is not trusted: set ca to the CA that signed it, or unsafeSsl to skip verification: x509: the certificate is not valid for the host dialed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", tt.err, tt.want)
			}
			if strings.Contains(tt.err.Error(), marker) {
				t.Errorf("error repeats the broker's words: %q", tt.err)
			}
		})
	}
	var ae *amqp.Error
	if err := explainAMQP(reply(amqp.NotFound), where, "u"); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Errorf("the amqp.Error is lost: %v", err)
	}
}
