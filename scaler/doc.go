// Package scaler keeps annotated workloads scaled on the depth of their queues.
//
// Setup wires it into a controller-runtime manager and returns the store.Store that the
// metrics API reads. A Reconciler per workload kind loads each workload's configuration
// (package spec) when its annotations or the Secrets they name change, keeping its own record
// of what it loaded and what it told the user, and applies the policy.Decision the Store
// makes: the HPA qscale owns, the scale subresource for the moves to and from zero and for
// paused-replicas, and Events. The Poller reads the triggers into the Store, one batched poll
// per broker connection; Secrets holds the Secrets that triggers name; Metrics exports the
// scaling loop to Prometheus as the Store's Observer. The manager's cache decodes workloads
// into package workload's types, and Lean, its transform, keeps of each workload and HPA only
// what the Reconciler reads.
package scaler
