package forecast

import "testing"

func BenchmarkETSLikelihood(b *testing.B) {
	y := synthMonthly(120, 1)
	for _, spec := range []string{"ANN", "AAdA", "MAM"} {
		b.Run(spec, func(b *testing.B) {
			sp, _ := parseETSSpec(spec)
			t := newETSTarget(y, sp, 12, critLik)
			par := append(etsInitParams(sp, 12), etsInitState(y, sp, 12)...)
			for b.Loop() {
				t.eval(par)
			}
		})
	}
}
