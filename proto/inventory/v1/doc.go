// Package inventoryv1 is the generated Go code for the audit schema in
// inventory.proto: the document cairn-agent writes and the controller
// stores. Regenerate with `make proto`; never edit the .pb.go by hand.
package inventoryv1
