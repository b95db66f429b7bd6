// Package jsonyaml re-encodes JSON documents as block-style YAML, keeping
// the order of keys, for the -o yaml output of Cairn's commands.
package jsonyaml

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Write writes the JSON document b to w as YAML.
func Write(w io.Writer, b []byte) error {
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return fmt.Errorf("convert to yaml: %w", err)
	}
	blockStyle(&node)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	return enc.Close()
}

// blockStyle clears the flow and quoting styles that parsing JSON leaves
// on every node; the encoder still quotes the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
