// Program otelcol is a minimal OpenTelemetry Collector used by polytel's
// integration tests: OTLP receiver -> debug exporter, nothing else.
//
// It mirrors what go.opentelemetry.io/collector/cmd/builder would generate
// for a manifest listing otlpreceiver and debugexporter, written by hand so
// that go.mod/go.sum are committed and the build is reproducible.
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is overridden at link time by scripts/install-collector.sh.
var version = "v0.162.0"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol",
		Description: "polytel test collector (otlpreceiver + debugexporter)",
		Version:     version,
	}

	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}

	if err := otelcol.NewCommand(set).Execute(); err != nil {
		// cobra already printed the error.
		os.Exit(1)
	}
}
