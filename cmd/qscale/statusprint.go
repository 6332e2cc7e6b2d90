package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// statusList is what -o json and -o yaml print: the rows under items, as kubectl prints lists.
type statusList struct {
	Items []workloadStatus `json:"items"`
}

// printStatus prints rows as output asks: a table ("" or wide) in kubectl's style, or JSON
// or YAML. The table's NAMESPACE column is there with allNamespaces, as in kubectl get -A.
func printStatus(w io.Writer, rows []workloadStatus, output string, allNamespaces bool, now time.Time) error {
	if rows == nil {
		rows = []workloadStatus{}
	}
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(statusList{Items: rows})
	case "yaml":
		b, err := yaml.Marshal(statusList{Items: rows})
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	wide := output == "wide"
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) // kubectl's printer's settings
	header := []string{"NAME", "READY", "ACTIVE", "FALLBACK", "PAUSED", "REPLICAS", "SINCE"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if wide {
		header = append(header, "TRIGGERS", "REASON")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := statusCells(r, now)
		if allNamespaces {
			cells = append([]string{r.Namespace}, cells...)
		}
		if wide {
			cells = append(cells, triggerCells(r), reasonCell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// statusCells are a row's columns from NAME to SINCE.
func statusCells(r workloadStatus, now time.Time) []string {
	name := strings.ToLower(r.Kind) + "/" + r.Name
	replicas := fmt.Sprintf("%d/%d", r.Replicas.Desired, r.Replicas.Current)
	s := r.Status
	if s == nil || r.Unknown != "" {
		return []string{name, "Unknown", "Unknown", "Unknown", "Unknown", replicas, "<unknown>"}
	}
	paused := condition(s.Paused)
	if s.Paused && s.PausedReplicas != nil {
		paused = fmt.Sprintf("True (%d)", *s.PausedReplicas)
	}
	since := "<unknown>"
	if t := s.LastTransition(); !t.IsZero() {
		since = duration.HumanDuration(now.Sub(t))
	}
	return []string{name, condition(s.Ready), condition(s.Active), condition(s.Fallback), paused, replicas, since}
}

// triggerCells is the wide TRIGGERS column: name=value/target for each trigger.
func triggerCells(r workloadStatus) string {
	if len(r.Values) == 0 {
		return "<none>"
	}
	parts := make([]string, len(r.Values))
	for i, v := range r.Values {
		value := v.Value
		if value == "" {
			value = "<unknown>"
		}
		parts[i] = v.Trigger + "=" + value + "/" + v.Target
	}
	return strings.Join(parts, ",")
}

// reasonCell is the wide REASON column: why the workload is not ready, or why its status is
// unknown.
func reasonCell(r workloadStatus) string {
	switch {
	case r.Unknown != "":
		return r.Unknown
	case r.Status != nil && r.Status.Reason != "":
		return r.Status.Reason
	}
	return "<none>"
}

func condition(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
