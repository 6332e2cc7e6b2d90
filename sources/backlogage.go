package sources

import (
	"strings"
	"time"
)

// BacklogAge holds the parameters of backlog-age scaling, which every trigger type accepts:
// each Kind's config struct embeds it, and Decode reads its fields as the config's own.
//
// A trigger with targetBacklogAge set scales to keep the oldest waiting message younger than
// Age, from the rates at which messages arrive and are consumed, rather than on its
// threshold: the threshold parameters its Kind declares may not be set with it. Its source
// then reports Counters with every Sample.
type BacklogAge struct {
	// Age is targetBacklogAge, at least a second; 0 when not set.
	Age time.Duration `param:"targetBacklogAge,min=1"`
	// ReplicaThroughput is replicaThroughput: the messages per second one replica handles,
	// the seed of the learned estimate; 0 when not set.
	ReplicaThroughput float64 `param:"replicaThroughput,positive"`
}

// ScalesOnBacklogAge reports whether targetBacklogAge is set.
func (b BacklogAge) ScalesOnBacklogAge() bool { return b.Age > 0 }

// backlogAge is how BacklogAgeOf finds the parameters in a config that embeds them.
func (b *BacklogAge) backlogAge() *BacklogAge { return b }

type backlogAger interface{ backlogAge() *BacklogAge }

// BacklogAgeOf returns the backlog-age parameters of cfg, and whether cfg scales on backlog
// age (targetBacklogAge is set). A trigger without targetBacklogAge scales on its threshold,
// and its samples carry no Counters.
func BacklogAgeOf(cfg Config) (BacklogAge, bool) {
	if b, ok := cfg.(backlogAger); ok {
		p := *b.backlogAge()
		return p, p.ScalesOnBacklogAge()
	}
	return BacklogAge{}, false
}

// BacklogAgeParam is the name of the parameter that turns backlog-age scaling on.
const BacklogAgeParam = "targetBacklogAge"

// backlogAgeProblems reports the threshold parameters of kind set alongside
// targetBacklogAge, which replaces them, and a replicaThroughput that nothing reads. Whether
// a threshold is set is read from the trigger as written: its default must not count.
func (k Kind) backlogAgeProblems(cfg Config, p Params) []FieldError {
	b, on := BacklogAgeOf(cfg)
	if !on {
		if b.ReplicaThroughput > 0 {
			return []FieldError{{Param: "replicaThroughput", Problem: "has no effect without " + BacklogAgeParam}}
		}
		return nil
	}
	var set []string
	for _, name := range k.Thresholds {
		if _, _, ok := lookup(name, p.Metadata, p.Secret); ok {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return nil
	}
	what := "it"
	if len(set) > 1 {
		what = "them"
	}
	return []FieldError{{
		Param:   BacklogAgeParam,
		Problem: "cannot be set with " + strings.Join(set, " and ") + ": " + BacklogAgeParam + " replaces " + what,
	}}
}
