package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	uberzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Log levels and formats of qscale run. logr, which qscale, controller-runtime and (through
// klog.SetLogger) client-go log through, knows only info with verbosities and error: there
// is no warning level to choose, and klog's warnings arrive as info.
var (
	logLevels  = []string{"debug", "info", "error"}
	zapLevels  = map[string]zapcore.Level{"debug": zapcore.DebugLevel, "info": zapcore.InfoLevel, "error": zapcore.ErrorLevel}
	logFormats = []string{"json", "text"}
)

// logOptions are the --log-level and --log-format of qscale run.
type logOptions struct {
	level, format enumValue
}

func newLogOptions() *logOptions {
	return &logOptions{
		level:  enumValue{value: "info", allowed: logLevels},
		format: enumValue{value: "json", allowed: logFormats},
	}
}

func (o *logOptions) addFlags(fs *pflag.FlagSet) {
	fs.Var(&o.level, "log-level", "lowest level logged: "+strings.Join(o.level.allowed, ", ")+" (debug adds the verbosity-1 messages of qscale and controller-runtime)")
	fs.Var(&o.format, "log-format", "log line format: json (one JSON object a line) or text (tab-separated, for people)")
}

// logger builds the logger that writes to w at the chosen level and in the chosen format.
// The json format is controller-runtime's production logger, unchanged.
func (o *logOptions) logger(w io.Writer) logr.Logger {
	opts := []zap.Opts{zap.WriteTo(w), zap.Level(zapLevels[o.level.value])}
	if o.format.value == "text" {
		opts = append(opts, func(zo *zap.Options) { zo.NewEncoder = textEncoder })
	}
	return zap.New(opts...)
}

// textEncoder is zap's console encoder with the production field names and time format, so
// that text and json lines differ in layout only.
func textEncoder(opts ...zap.EncoderConfigOption) zapcore.Encoder {
	cfg := uberzap.NewProductionEncoderConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	return zapcore.NewConsoleEncoder(cfg)
}

// enumValue is a string flag that accepts only the values in allowed; any other is refused
// when the flag is parsed, with the accepted values in the error.
type enumValue struct {
	value   string
	allowed []string
}

var _ pflag.Value = (*enumValue)(nil)

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
	}
	e.value = s
	return nil
}

func (e *enumValue) String() string { return e.value }

func (e *enumValue) Type() string { return "string" }
