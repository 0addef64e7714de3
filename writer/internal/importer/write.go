package importer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"kohaku/pkg/retry"
	"kohaku/writer/internal/store"
)

// write stores the good reports of b, retrying transient failures, and describes those
// that the database refused.
func (im *importer) write(ctx context.Context, b []item) error {
	var (
		msgs []store.Message
		reps []*Report
	)
	for _, it := range b {
		if it.rep.OK() && it.msg.Err == nil {
			msgs = append(msgs, it.msg)
			reps = append(reps, it.rep)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	res, err := im.writeRetrying(ctx, msgs)
	if err != nil {
		return err
	}
	for _, i := range res.Dead {
		im.out.printf("import: %s: not imported: the database refused it (kept in kohaku_dead_letter; the log says why)\n", describe(reps[i]))
	}
	im.p.rejected.Add(int64(len(res.Dead)))
	im.p.add(res)
	dead := 0
	for i, m := range msgs {
		if dead < len(res.Dead) && res.Dead[dead] == i {
			dead++
			continue
		}
		im.window.Add(m.Rows)
	}
	return nil
}

// writeRetrying writes msgs until it succeeds, retrying transient failures with capped
// exponential backoff until ctx ends. An attempt in progress is not canceled by ctx, so
// that an interrupted import finishes the batch it is writing. Other failures need an
// operator and end the import: what was written stays, and importing again adds only the
// rest.
func (im *importer) writeRetrying(ctx context.Context, msgs []store.Message) (store.Result, error) {
	b := retry.Backoff{Min: im.o.RetryMin, Max: im.o.RetryMax}
	var failed time.Time
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), im.o.WriteTimeout)
		res, err := im.st.Write(actx, msgs)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				im.o.Logger.Info("database write works again", "attempts", attempt, "outage", time.Since(failed).Round(time.Millisecond))
			}
			return res, nil
		case !store.Transient(err):
			return store.Result{}, fmt.Errorf("write %d reports: %w", len(msgs), err)
		case attempt == 1:
			failed = time.Now()
			im.o.Logger.Warn("database unavailable, keeping the batch and retrying", "reports", len(msgs), "err", err)
		default:
			im.o.Logger.Debug("database write failed again", "attempts", attempt, "reports", len(msgs), "err", err)
		}
		if werr := b.Wait(ctx); werr != nil {
			return store.Result{}, fmt.Errorf("write %d reports: gave up after %d attempts: %w", len(msgs), attempt, errors.Join(werr, err))
		}
	}
}
