package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/akutan/akutan/internal/buildinfo"
)

func (a *app) contextCmd() *cobra.Command {
	noConfig := map[string]string{"config": "none"}
	list := &cobra.Command{
		Use:         "list",
		Short:       "list the config file's contexts; * marks the current one",
		Args:        noArgs,
		Annotations: noConfig,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			current := cfg.CurrentContext
			if a.contextName != "" {
				current = a.contextName
			}
			if a.jsonOut {
				ctxs := map[string]contextCfg{}
				for n, c := range cfg.Contexts {
					ctxs[n] = contextCfg{API: orEmpty(c.API), Log: orEmpty(c.Log), Store: c.Store}
				}
				return a.printJSON(struct {
					ConfigFile     string                `json:"config_file"`
					CurrentContext string                `json:"current_context"`
					Contexts       map[string]contextCfg `json:"contexts"`
				}{path, current, ctxs})
			}
			if len(cfg.Contexts) == 0 {
				fmt.Fprintf(a.stdout, "no contexts in %s; without one, akutan uses the local stack\n", path)
				return nil
			}
			w := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CURRENT\tNAME\tAPI\tLOG\tSTORE")
			for _, n := range cfg.names() {
				c := cfg.Contexts[n]
				mark := ""
				if n == current {
					mark = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", mark, n, orNone(strings.Join(c.API, ",")), orNone(strings.Join(c.Log, ",")), orNone(c.Store))
			}
			return w.Flush()
		},
	}
	use := &cobra.Command{
		Use:         "use NAME",
		Short:       "make NAME the config file's current context",
		Args:        argsBetween(1, 1),
		Annotations: noConfig,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return usageError("no context %q in %s (have: %s)", args[0], path, strings.Join(cfg.names(), ", "))
			}
			if err := setCurrentContext(path, args[0]); err != nil {
				return fmt.Errorf("config file: %w", err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]string{"config_file": path, "current_context": args[0]})
			}
			fmt.Fprintf(a.stdout, "current context: %s (%s)\n", args[0], path)
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "print the effective addresses and store, and where each came from",
		Long: `show prints the API servers, log replicas and store that other commands
would use, and where each came from: "flag", "env" (an AKUTAN_* variable),
"config:NAME" (a context of the config file), or "default" (the local
stack). A flag beats the environment, which beats the config file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := func(name string) string {
				if s := a.sources[name]; s != "" {
					return s
				}
				return "default"
			}
			_, ctxName, _ := a.currentContext()
			path, _ := a.configFilePath()
			if a.jsonOut {
				return a.printJSON(map[string]any{
					"config_file": path, "context": ctxName,
					"api": orEmpty(a.api), "log": orEmpty(a.log), "store": a.store,
					"sources": map[string]string{"api": src("api"), "log": src("log"), "store": src("store")},
				})
			}
			fmt.Fprintf(a.stdout, "config file: %s\ncontext:     %s\n", path, orNone(ctxName))
			fmt.Fprintf(a.stdout, "api:   %s (%s)\nlog:   %s (%s)\nstore: %s (%s)\n",
				strings.Join(a.api, ","), src("api"), strings.Join(a.log, ","), src("log"), a.store, src("store"))
			return nil
		},
	}
	return a.group("context", "manage the config file's named contexts (deployments)", list, use, show)
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "print the version, commit and build date",
		Args:        noArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			if a.jsonOut {
				return a.printJSON(info)
			}
			fmt.Fprintln(a.stdout, "akutan", info)
			return nil
		},
	}
}
