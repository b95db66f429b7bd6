// Package controllerv1 is the generated Go code for controller.proto: the
// operator API cairnctl uses, and the records the controller's store
// keeps. Regenerate with `make proto`.
package controllerv1
