package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/assignment-ledger/ledger/commands"
	"github.com/assignment-ledger/ledger/eventstore"
	"github.com/assignment-ledger/ledger/migrations"
)

func runBootstrap(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bootstrap", "bootstrap --tenant NAME --admin-name NAME --admin-email EMAIL",
		"Creates a tenant, its first admin user and an API key for that admin, and prints\n"+
			`one JSON object {"tenant_id","user_id","api_key"} on stdout. The key is shown only once.`)
	tenant := fs.String("tenant", "", "tenant name (required)")
	name := fs.String("admin-name", "", "the first admin's name (required)")
	email := fs.String("admin-email", "", "the first admin's e-mail address (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for flagName, v := range map[string]string{"--tenant": *tenant, "--admin-name": *name, "--admin-email": *email} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, flagName)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(env.stderr, "missing required flags: %s\n", strings.Join(missing, ", "))
		return errUsage
	}
	_, pool, log, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Apply(ctx, pool, log); err != nil {
		return err
	}
	// A tenant and its first admin hold no customer data: no KEK needed.
	res, err := commands.New(eventstore.New(pool), nil, log).Bootstrap(ctx, *tenant, *name, *email)
	if err != nil {
		return err
	}
	return json.NewEncoder(env.stdout).Encode(res)
}
