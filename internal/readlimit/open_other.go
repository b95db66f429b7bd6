//go:build !unix

package readlimit

const nonBlock = 0
