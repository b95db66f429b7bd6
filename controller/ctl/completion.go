package ctl

import (
	"github.com/spf13/cobra"
)

func (a *app) newCompletionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Completion prints the script that makes your shell complete cairnctl's
commands and flags. Load it in the current shell, or install it where your
shell looks for completions.`,
		Example: `  # bash, this shell
  source <(cairnctl completion bash)
  # bash, every shell
  cairnctl completion bash > /etc/bash_completion.d/cairnctl

  # zsh
  cairnctl completion zsh > "${fpath[1]}/_cairnctl"

  # fish
  cairnctl completion fish > ~/.config/fish/completions/cairnctl.fish`,
		Annotations: map[string]string{noConfig: ""},
		ValidArgs:   []string{"bash", "zsh", "fish"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("%s needs a shell: bash, zsh or fish (got %d arguments)", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return usageErrorf("unknown shell %q: use bash, zsh or fish", args[0])
			}
		},
	}
}
