// Package scaler keeps annotated workloads scaled on the depth of their queues.
//
// The Reconciler loads each workload's configuration (package spec), hands its triggers to
// the Poller, asks the Store for the Decision (package policy) and applies it: the HPA qscale
// owns, the scale subresource for the moves to and from zero and for paused-replicas, and
// Events. The Poller reads the sources into the Store, one batched poll per connection.
// Setup wires them into a controller-runtime manager and returns the Store that the metrics
// API reads.
package scaler
