package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Scaffolding: a helper replaces this file.

func (a *app) clusterAddDCCmd() *cobra.Command {
	return &cobra.Command{Use: "adddc", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}

func (a *app) clusterRemoveDCCmd() *cobra.Command {
	return &cobra.Command{Use: "removedc", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
