package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Scaffolding: a helper replaces this file.

func (a *app) clusterRepartitionCmd() *cobra.Command {
	return &cobra.Command{Use: "repartition", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
