//go:build !ckptfault

package fault

import "testing"

// The build users run has no fault points: Point does nothing whatever
// the environment says.
func TestPointIsInertWithoutTheTag(t *testing.T) {
	t.Setenv(Env, "step:checkpoint")
	if kill != nil {
		t.Fatal("a fault point is armed in the build without the ckptfault tag")
	}
	Point("step:checkpoint") // must return
}
