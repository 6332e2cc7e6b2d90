package activemq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// depthCase is one trigger read once through a fresh pool.
type depthCase struct {
	name       string
	md, secret map[string]string
	wantValue  float64
	wantActive bool
	wantTarget float64
	wantErr    []string
	// wantHidden are texts the broker sends that the error must not repeat.
	wantHidden []string
}

func runDepthCases(t *testing.T, password string, tests []depthCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := parse(t, tt.md, tt.secret)
			got := poll(t, newPool(t), tr)[0]
			wantSample(t, got, password, tt.wantValue, tt.wantActive, tt.wantErr...)
			for _, h := range tt.wantHidden {
				if got.Err != nil && strings.Contains(got.Err.Error(), h) {
					t.Errorf("error repeats the broker's text %q: %v", h, got.Err)
				}
			}
			if tt.wantTarget != 0 && tr.Config.Target() != tt.wantTarget {
				t.Errorf("target = %v, want %v", tr.Config.Target(), tt.wantTarget)
			}
		})
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	b := broker(t)
	orders, drained, dotted := unique("orders"), unique("drained"), unique("jobs.eu")
	fill(t, b, orders, 5, 2)
	fill(t, b, drained, 2, 2)
	fill(t, b, dotted, 4, 0)
	secret := login(b)
	for _, p := range protocols(b) {
		t.Run(p.name, func(t *testing.T) {
			runDepthCases(t, b.Password, []depthCase{
				{name: "sent 5, consumed 2", md: p.md(orders), secret: secret, wantValue: 3, wantActive: true, wantTarget: 10},
				{name: "every message consumed", md: p.md(drained), secret: secret, wantValue: 0, wantActive: false},
				{name: "a dot in the name is no wildcard", md: p.md(dotted), secret: secret, wantValue: 4, wantActive: true},
				{name: "targetQueueSize", md: with(p.md(orders), "targetQueueSize", "2.5"), secret: secret, wantValue: 3, wantActive: true, wantTarget: 2.5},
				{name: "activationTargetQueueSize not exceeded", md: with(p.md(orders), "activationTargetQueueSize", "3"), secret: secret, wantValue: 3, wantActive: false},
				{name: "activationTargetQueueSize exceeded", md: with(p.md(orders), "activationTargetQueueSize", "2"), secret: secret, wantValue: 3, wantActive: true},
				{name: "the right brokerName", md: with(p.md(orders), "brokerName", b.Name), secret: secret, wantValue: 3, wantActive: true},
			})
		})
	}
	t.Run("jolokia with restAPITemplate", func(t *testing.T) {
		literal := fmt.Sprintf("http://%s/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=%s,destinationType=Queue,destinationName=%s/QueueSize", b.JolokiaAddr, b.Name, orders)
		runDepthCases(t, b.Password, []depthCase{
			{name: "a literal URL names endpoint, broker and queue", md: md("restAPITemplate", literal), secret: secret, wantValue: 3, wantActive: true},
			{name: "a template filled from the parameters", md: md("restAPITemplate", "http://{{.ManagementEndpoint}}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize",
				"managementEndpoint", b.JolokiaAddr, "brokerName", b.Name, "destinationName", orders), secret: secret, wantValue: 3, wantActive: true},
			{name: "corsHeader", md: md("restAPITemplate", literal, "corsHeader", "https://console.example"), secret: secret, wantValue: 3, wantActive: true},
		})
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	b := broker(t)
	orders := unique("orders")
	fill(t, b, orders, 1, 0)
	secret := login(b)
	wrong := map[string]string{"username": b.User, "password": "wrong-" + b.Password}
	jolokia, stomp := protocols(b)[0].md, protocols(b)[1].md
	closed := sourcetest.ClosedPort(t)
	runDepthCases(t, b.Password, []depthCase{
		{name: "jolokia: unknown queue", md: jolokia("nosuch"), secret: secret,
			wantErr: []string{`queue "nosuch" not found on broker "qscale-test" at http://` + b.JolokiaAddr}, wantHidden: []string{"InstanceNotFoundException"}},
		{name: "jolokia: unknown broker", md: with(jolokia(orders), "brokerName", "nosuch"), secret: secret,
			wantErr: []string{`broker "nosuch" not found at http://` + b.JolokiaAddr, "check brokerName"}},
		{name: "jolokia: wrong password", md: jolokia(orders), secret: wrong,
			wantErr: []string{`the Jolokia agent at http://` + b.JolokiaAddr + ` refused the login of user "qscale": wrong username or password`}},
		{name: "jolokia: no credentials", md: jolokia(orders),
			wantErr: []string{`the Jolokia agent at http://` + b.JolokiaAddr + ` asks for a login`}},
		{name: "jolokia: not a Jolokia path", md: md("restAPITemplate", "http://"+b.JolokiaAddr+"/console/read/org.apache.activemq:type=Broker,brokerName=b,destinationName=q/QueueSize"), secret: secret,
			wantErr: []string{"no Jolokia agent at http://" + b.JolokiaAddr + "/console/read/"}},
		{name: "jolokia: an attribute that is no number", md: md("restAPITemplate", "http://"+b.JolokiaAddr+"/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=qscale-test,destinationType=Queue,destinationName="+orders+"/Name"), secret: secret,
			wantErr: []string{`not a number: does the URL read an attribute such as QueueSize?`}},
		{name: "jolokia: broker down", md: with(jolokia(orders), "managementEndpoint", closed), secret: secret,
			wantErr: []string{"cannot connect to the Jolokia agent at http://" + closed, "connection refused"}},
		{name: "stomp: unknown queue", md: stomp("nosuch"), secret: secret,
			wantErr: []string{`queue "nosuch" not found on the broker at stomp://` + b.StompAddr}},
		{name: "stomp: another broker's name", md: with(stomp(orders), "brokerName", "nosuch"), secret: secret,
			wantErr: []string{`brokerName is "nosuch" but the broker at stomp://` + b.StompAddr + ` has another name`}, wantHidden: []string{b.Name}},
		{name: "stomp: wrong password", md: stomp(orders), secret: wrong,
			wantErr:    []string{`ActiveMQ at stomp://` + b.StompAddr + ` refused the login of user "qscale": wrong username or password`},
			wantHidden: []string{"is invalid"}}, // the broker's words: "User name [qscale] or password is invalid."
		{name: "stomp: broker down", md: with(stomp(orders), "stompEndpoint", closed), secret: secret,
			wantErr: []string{"cannot connect to ActiveMQ at stomp://" + closed, "connection refused"}},
	})
}

// A broker that accepts connections and never answers fails the poll at the caller's
// deadline, with an error, for either protocol.
func TestBrokerThatHangs(t *testing.T) {
	t.Parallel()
	silent := sourcetest.SilentServer(t)
	tests := []struct {
		name    string
		md      map[string]string
		wantErr []string
	}{
		{name: "jolokia", md: md("managementEndpoint", silent, "brokerName", "b", "destinationName", "q"), wantErr: []string{"the Jolokia agent at http://" + silent + " did not answer in time"}},
		{name: "stomp", md: md("protocol", "stomp", "stompEndpoint", silent, "destinationName", "q"), wantErr: []string{"ActiveMQ at stomp://" + silent + " did not answer in time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := parse(t, tt.md, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			got := newPool(t).Poll(ctx, []sources.Trigger{tr})[0]
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the poll took %s with a deadline of 300ms", took)
			}
			wantSample(t, got, "", 0, false, tt.wantErr...)
		})
	}
}
