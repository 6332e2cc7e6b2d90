package sources

import "context"

// RoundOnConnection runs one round of requests on a long-lived connection. When there is
// none (connected is false) it dials first. When a round fails on a connection that was
// already open, that connection may have broken unnoticed since the last poll (a broker
// restart, an operator closing it), so it dials once more and retries the round on the new
// connection, unless ctx is done. A round that fails on a fresh connection is not retried.
func RoundOnConnection[T any](ctx context.Context, connected bool, dial func(context.Context) error, round func(context.Context) (T, error)) (T, error) {
	if !connected {
		if err := dial(ctx); err != nil {
			var zero T
			return zero, err
		}
	}
	got, err := round(ctx)
	if err != nil && connected && ctx.Err() == nil {
		if err = dial(ctx); err != nil {
			var zero T
			return zero, err
		}
		got, err = round(ctx)
	}
	return got, err
}
