package diff

import "testing"

func TestHumanValue(t *testing.T) {
	tests := []struct {
		name, field, value, want string
	}{
		{"size field", "size_bytes", "17179869184", "16 GiB"},
		{"nested size field", "partitions[sda2].size_bytes", "450000000000", "419.1 GiB"},
		{"other number", "speed_mts", "3200", "3200"},
		{"size field not a number", "size_bytes", "", ""},
		{"nested item keeps its text", "partitions[sdb1]", "{name=sdb1 size_bytes=1000}", "{name=sdb1 size_bytes=1000}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := humanValue(tc.field, tc.value); got != tc.want {
				t.Errorf("humanValue(%q, %q) = %q, want %q", tc.field, tc.value, got, tc.want)
			}
		})
	}
}
