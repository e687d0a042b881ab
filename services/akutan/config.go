package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// configVersion is the config file format this CLI reads and writes.
const configVersion = 1

// configFile is the CLI's config file: named contexts, like kubectl's
// contexts or mc's aliases.
type configFile struct {
	Version        int                   `yaml:"version,omitempty"`
	CurrentContext string                `yaml:"current-context,omitempty"`
	Contexts       map[string]contextCfg `yaml:"contexts,omitempty"`
}

// contextCfg is one deployment: where its API servers, log replicas and
// bucket are.
type contextCfg struct {
	API   addrList `yaml:"api,omitempty" json:"api"`
	Log   addrList `yaml:"log,omitempty" json:"log"`
	Store string   `yaml:"store,omitempty" json:"store"`
}

// addrList is a list of addresses, written in YAML as a list or as one
// comma-separated string.
type addrList []string

func (l *addrList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = cleanAddrs([]string{n.Value})
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = cleanAddrs(s)
		return nil
	}
	return fmt.Errorf("line %d: want a list of addresses", n.Line)
}

// Validate reports every problem at once.
func (c *configFile) Validate() error {
	var errs []error
	if c.Version > configVersion {
		errs = append(errs, fmt.Errorf("version %d is newer than this akutan reads (%d)", c.Version, configVersion))
	}
	if c.CurrentContext != "" {
		if _, ok := c.Contexts[c.CurrentContext]; !ok {
			errs = append(errs, fmt.Errorf("current-context %q is not among the contexts", c.CurrentContext))
		}
	}
	for _, name := range c.names() {
		if name == "" || strings.ContainsAny(name, " \t\n") {
			errs = append(errs, fmt.Errorf("context name %q: want a name without spaces", name))
		}
	}
	return errors.Join(errs...)
}

func (c *configFile) names() []string {
	var names []string
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// configPath is where the config file is: --config or AKUTAN_CONFIG, else
// $XDG_CONFIG_HOME/akutan/config.yaml, else ~/.config/akutan/config.yaml.
// explicit says the user named it, so its absence is an error.
func (a *app) configFilePath() (path string, explicit bool) {
	if a.configPath != "" {
		return a.configPath, true
	}
	if x := a.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "akutan", "config.yaml"), false
	}
	home := a.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return "", false
	}
	return filepath.Join(home, ".config", "akutan", "config.yaml"), false
}

// loadConfig reads the config file; a missing default file is an empty
// config.
func (a *app) loadConfig() (*configFile, string, error) {
	path, explicit := a.configFilePath()
	cfg := &configFile{}
	if path == "" {
		return cfg, path, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("config file: %w", err)
	}
	if err := yaml.Unmarshal(b, cfg); err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, path, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, path, nil
}

// currentContext returns the context to use: --context (or
// AKUTAN_CONTEXT), else the file's current-context; nil when there is
// none.
func (a *app) currentContext() (*contextCfg, string, error) {
	cfg, path, err := a.loadConfig()
	if err != nil {
		return nil, "", err
	}
	name := a.contextName
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil, "", nil
	}
	c, ok := cfg.Contexts[name]
	if !ok {
		return nil, "", usageError("no context %q in %s (have: %s)", name, path, strings.Join(cfg.names(), ", "))
	}
	return &c, name, nil
}

// setCurrentContext rewrites the file's current-context, keeping the rest
// of the file (comments included) as it is.
func setCurrentContext(path, name string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: want a mapping at the top", path)
	}
	m := doc.Content[0]
	set := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "current-context" {
			m.Content[i+1].SetString(name)
			set = true
		}
	}
	if !set {
		m.Content = append([]*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "current-context"},
			{Kind: yaml.ScalarNode, Value: name},
		}, m.Content...)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
