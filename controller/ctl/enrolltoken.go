package ctl

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newEnrollTokenCommand() *cobra.Command {
	return group("enroll-token", "Make join tokens that let new agents enroll",
		`An enrollment token lets cairn-agent enroll a new server once: the agent
generates its key, sends a certificate request with the token, and gets a
client certificate naming its node ID. Tokens are short-lived and have a
use count; the controller keeps only their hash.`,
		`  cairnctl enroll-token create --labels env=prod,role=web`,
		a.newEnrollTokenCreateCommand())
}

func (a *app) newEnrollTokenCreateCommand() *cobra.Command {
	var (
		ttl    time.Duration
		uses   uint32
		labels []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an enrollment token and print the agent's command line",
		Long: `Create makes a join token valid for --ttl (default 10 minutes, at most
24 hours) and --uses enrollments (default 1). Nodes that enroll with it get
its --labels. The token is printed once, with a ready-to-paste cairn-agent
command line; copy the controller's ca.pem to the node next to it.`,
		Example: `  # One server, ten minutes
  cairnctl enroll-token create

  # A batch of five web servers within the hour
  cairnctl enroll-token create --ttl 1h --uses 5 --labels env=prod,role=web

  # Just the token, for a provisioning script
  cairnctl enroll-token create -o json | jq -r .token`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	fl := cmd.Flags()
	fl.DurationVar(&ttl, "ttl", limits.DefaultEnrollTTL, "how long the token is valid (at most 24h)")
	fl.Uint32Var(&uses, "uses", 1, "how many agents may enroll with it")
	fl.StringArrayVar(&labels, "labels", nil, describePairs("labels for the enrolled nodes"))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if ttl <= 0 || ttl > limits.EnrollTTL {
			return usageErrorf("--ttl %s: give a duration above 0 and at most 24h", ttl)
		}
		if uses == 0 {
			return usageErrorf("--uses 0: give at least 1")
		}
		if uses > limits.EnrollUses {
			return usageErrorf("--uses %d: at most %d", uses, limits.EnrollUses)
		}
		l, err := parsePairs("--labels", splitPairs(labels), false)
		if err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewEnrollTokensClient(cc).CreateEnrollToken(ctx, &controllerv1.CreateEnrollTokenRequest{
			TtlSeconds: int64(ttl / time.Second),
			Uses:       uses,
			Labels:     l,
		})
		if err != nil {
			return rpcErr("create enrollment token", err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, resp, nil)
		}
		w := a.out
		fmt.Fprintf(w, "Enrollment token %s (expires %s, %d use(s); shown once):\n\n  %s\n\n", resp.GetId(), resp.GetExpiresAt(), resp.GetUses(), resp.GetToken())
		fmt.Fprintf(w, "On the new server, with the controller's CA (%s) copied there as ca.pem, run:\n\n", orNone(a.cfg.CA))
		fmt.Fprintf(w, "  cairn-agent run --controller %s --token %s --ca ca.pem --data-dir /var/lib/cairn-agent\n", a.cfg.Controller, resp.GetToken())
		return nil
	}
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "not configured"
	}
	return s
}
