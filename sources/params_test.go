package sources_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
)

type level int

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return errTest("must be low or high")
	}
	return nil
}

type errTest string

func (e errTest) Error() string { return string(e) }

type sample struct {
	Host     string          `param:"host,required"`
	Mode     string          `param:"mode,default=fast,enum=fast|slow"`
	Count    int             `param:"count,default=3,min=1"`
	Ratio    float64         `param:"ratio,default=0.5,positive"`
	Enabled  bool            `param:"enabled"`
	Tags     []string        `param:"tags,enum=a|b|c"`
	Timeout  time.Duration   `param:"timeout,default=2s,min=0.1"`
	Level    level           `param:"level"`
	Password string          `param:"password,secret"`
	Version  sources.Ignored `param:"version"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name         string
		metadata     map[string]string
		secret       map[string]string
		want         sample
		wantProblems []string // "param: problem" substrings, in order
	}{
		{
			name:     "defaults fill what is not set",
			metadata: map[string]string{"host": "h"},
			want:     sample{Host: "h", Mode: "fast", Count: 3, Ratio: 0.5, Timeout: 2 * time.Second},
		},
		{
			name: "every type parses",
			metadata: map[string]string{
				"host": " h ", "mode": "slow", "count": "7", "ratio": "1.5", "enabled": "true",
				"tags": "a, c,", "timeout": "250ms", "level": "high", "version": "2.1.0",
			},
			want: sample{Host: "h", Mode: "slow", Count: 7, Ratio: 1.5, Enabled: true, Tags: []string{"a", "c"}, Timeout: 250 * time.Millisecond, Level: 2},
		},
		{
			name:     "the Secret supplies and overrides parameters",
			metadata: map[string]string{"host": "from-metadata"},
			secret:   map[string]string{"host": "from-secret", "password": "pw", "unrelated": "x"},
			want:     sample{Host: "from-secret", Mode: "fast", Count: 3, Ratio: 0.5, Timeout: 2 * time.Second, Password: "pw"},
		},
		{
			name:         "blank counts as not set",
			metadata:     map[string]string{"host": "  "},
			wantProblems: []string{"host: is required"},
		},
		{
			name: "every problem is reported at once",
			metadata: map[string]string{
				"mode": "medium", "count": "0", "ratio": "-1", "enabled": "yes", "tags": "a,z",
				"timeout": "5", "level": "mid", "hots": "h",
			},
			wantProblems: []string{
				`host: is required`,
				`mode: must be one of fast, slow, got "medium"`,
				`count: must be at least 1, got "0"`,
				`ratio: must be greater than 0, got "-1"`,
				`enabled: must be true or false, got "yes"`,
				`tags: must be one of a, b, c, got "a,z"`,
				`timeout: must be a duration such as 500ms or 10s, got "5"`,
				`level: must be low or high, got "mid"`,
				`hots: unknown parameter (did you mean "host"?)`,
			},
		},
		{
			name:         "a secret parameter is refused in metadata and never echoed",
			metadata:     map[string]string{"host": "h", "password": "hunter2"},
			wantProblems: []string{"password: is secret: put it in the Secret named by authenticationRef, not in metadata"},
		},
		{
			name:         "numbers reject NaN and words",
			metadata:     map[string]string{"host": "h", "ratio": "NaN", "count": "1.5"},
			wantProblems: []string{`count: must be a whole number, got "1.5"`, `ratio: must be a number, got "NaN"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sample
			problems := sources.Decode(&got, tt.metadata, tt.secret)
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("problems = %v, want %d: %v", problems, len(tt.wantProblems), tt.wantProblems)
			}
			for i, p := range problems {
				if !strings.Contains(p.Error(), tt.wantProblems[i]) {
					t.Errorf("problem %d = %q, want %q", i, p.Error(), tt.wantProblems[i])
				}
				if strings.Contains(p.Error(), "hunter2") {
					t.Errorf("problem reveals a secret: %q", p.Error())
				}
			}
			if len(tt.wantProblems) == 0 && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodePanicsOnABadTag(t *testing.T) {
	type bad struct {
		X string `param:"x,requird"`
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a misspelt tag option should panic")
		}
	}()
	sources.Decode(&bad{}, nil, nil)
}

func TestNames(t *testing.T) {
	got := sources.Names(&sample{})
	want := []string{"host", "mode", "count", "ratio", "enabled", "tags", "timeout", "level", "password", "version"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
}
