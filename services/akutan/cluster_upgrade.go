package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Scaffolding: a helper replaces this file.

func (a *app) clusterUpgradeCmd() *cobra.Command {
	return &cobra.Command{Use: "upgrade", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
