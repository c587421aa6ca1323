// Package cpu is the plain-Go oracle every kernel is tested against: obviously
// correct loops that accumulate in float64. Never optimise it.
package cpu

import "math"

// MatMul returns y [M, N] = x [M, K] · w [N, K]ᵀ.
func MatMul(w []float32, N, K int, x []float32, M int) []float32 {
	y := make([]float32, M*N)
	for m := 0; m < M; m++ {
		for n := 0; n < N; n++ {
			var s float64
			for k := 0; k < K; k++ {
				s += float64(w[n*K+k]) * float64(x[m*K+k])
			}
			y[m*N+n] = float32(s)
		}
	}
	return y
}

// RMSNorm returns x [rows, D] normalised per row and scaled by w [D].
func RMSNorm(x, w []float32, rows, D int, eps float64) []float32 {
	y := make([]float32, rows*D)
	for r := 0; r < rows; r++ {
		var ss float64
		for i := 0; i < D; i++ {
			v := float64(x[r*D+i])
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(D)+eps)
		for i := 0; i < D; i++ {
			y[r*D+i] = float32(float64(x[r*D+i]) * inv * float64(w[i]))
		}
	}
	return y
}

// RoPE returns x [T, H, D] rotated (rotate-half) at positions pos [T].
func RoPE(x []float32, pos []int32, T, H, D int, theta float64) []float32 {
	y := append([]float32(nil), x...)
	half := D / 2
	for t := 0; t < T; t++ {
		for h := 0; h < H; h++ {
			base := (t*H + h) * D
			for i := 0; i < half; i++ {
				inv := 1 / math.Pow(theta, float64(2*i)/float64(D))
				ang := float64(pos[t]) * inv
				c, s := math.Cos(ang), math.Sin(ang)
				x1, x2 := float64(x[base+i]), float64(x[base+i+half])
				y[base+i] = float32(x1*c - x2*s)
				y[base+i+half] = float32(x2*c + x1*s)
			}
		}
	}
	return y
}

// Softmax returns softmax(scale·x) over each row of x [rows, N].
func Softmax(x []float32, rows, N int, scale float64) []float32 {
	y := make([]float32, len(x))
	for r := 0; r < rows; r++ {
		m := math.Inf(-1)
		for i := 0; i < N; i++ {
			m = math.Max(m, float64(x[r*N+i])*scale)
		}
		var s float64
		for i := 0; i < N; i++ {
			s += math.Exp(float64(x[r*N+i])*scale - m)
		}
		for i := 0; i < N; i++ {
			y[r*N+i] = float32(math.Exp(float64(x[r*N+i])*scale-m) / s)
		}
	}
	return y
}

// Add returns a + b.
func Add(a, b []float32) []float32 {
	y := make([]float32, len(a))
	for i := range a {
		y[i] = float32(float64(a[i]) + float64(b[i]))
	}
	return y
}

// SiluMul returns silu(g)·u.
func SiluMul(g, u []float32) []float32 {
	y := make([]float32, len(g))
	for i := range g {
		v := float64(g[i])
		y[i] = float32(v / (1 + math.Exp(-v)) * float64(u[i]))
	}
	return y
}

// Embed returns the rows ids of w [V, D].
func Embed(w []float32, D int, ids []int32) []float32 {
	y := make([]float32, len(ids)*D)
	for t, id := range ids {
		copy(y[t*D:(t+1)*D], w[int(id)*D:(int(id)+1)*D])
	}
	return y
}

// NMSE is Σ(a−b)²/Σb², the normalised error used by every parity test.
func NMSE(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return num
	}
	return num / den
}

// Attention returns causal GQA attention for queries q [T, nq, d] at positions
// past..past+T-1 over keys/values k, v [past+T, nkv, d]: [T, nq, d].
func Attention(q, k, v []float32, T, past, nq, nkv, d int, scale float64) []float32 {
	out := make([]float32, T*nq*d)
	G := nq / nkv
	for t := 0; t < T; t++ {
		for h := 0; h < nq; h++ {
			g := h / G
			n := past + t + 1
			s := make([]float64, n)
			m := math.Inf(-1)
			for j := 0; j < n; j++ {
				var dot float64
				for i := 0; i < d; i++ {
					dot += float64(q[(t*nq+h)*d+i]) * float64(k[(j*nkv+g)*d+i])
				}
				s[j] = dot * scale
				m = math.Max(m, s[j])
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				sum += s[j]
			}
			for i := 0; i < d; i++ {
				var acc float64
				for j := 0; j < n; j++ {
					acc += s[j] * float64(v[(j*nkv+g)*d+i])
				}
				out[(t*nq+h)*d+i] = float32(acc / sum)
			}
		}
	}
	return out
}

// Conv2D returns a convolution of x [Cin, h, w] with w [Cout, Cin, ks, ks] and
// bias: stride 1 with pad (ks-1)/2, or stride 2 with pad 0 and a zero row and
// column added at the bottom and right (IBQ's Downsample); with up, the input is
// first upsampled ×2 (nearest). Output [Cout, ho, wo].
func Conv2D(x []float32, cin, h, w int, wt, bias []float32, cout, ks, stride int, up bool) ([]float32, int, int) {
	if up {
		u := make([]float32, cin*4*h*w)
		for c := 0; c < cin; c++ {
			for y := 0; y < 2*h; y++ {
				for xx := 0; xx < 2*w; xx++ {
					u[(c*2*h+y)*2*w+xx] = x[(c*h+y/2)*w+xx/2]
				}
			}
		}
		x, h, w = u, 2*h, 2*w
	}
	pad, ho, wo := (ks-1)/2, h, w
	if stride == 2 {
		pad, ho, wo = 0, (h+1-3)/2+1, (w+1-3)/2+1
	}
	y := make([]float32, cout*ho*wo)
	for co := 0; co < cout; co++ {
		for oy := 0; oy < ho; oy++ {
			for ox := 0; ox < wo; ox++ {
				s := float64(bias[co])
				for ci := 0; ci < cin; ci++ {
					for ky := 0; ky < ks; ky++ {
						for kx := 0; kx < ks; kx++ {
							iy, ix := oy*stride+ky-pad, ox*stride+kx-pad
							if iy < 0 || ix < 0 || iy >= h || ix >= w {
								continue
							}
							s += float64(wt[((co*cin+ci)*ks+ky)*ks+kx]) * float64(x[(ci*h+iy)*w+ix])
						}
					}
				}
				y[(co*ho+oy)*wo+ox] = float32(s)
			}
		}
	}
	return y, ho, wo
}

// GroupNorm returns GroupNorm(g groups, eps) of x [c, hw] with affine gamma, beta,
// followed by swish when asked.
func GroupNorm(x []float32, c, hw, g int, gamma, beta []float32, eps float64, swish bool) []float32 {
	y := make([]float32, len(x))
	per := c / g * hw
	for gi := 0; gi < g; gi++ {
		var s, q float64
		for i := gi * per; i < (gi+1)*per; i++ {
			s += float64(x[i])
		}
		mean := s / float64(per)
		for i := gi * per; i < (gi+1)*per; i++ {
			d := float64(x[i]) - mean
			q += d * d
		}
		inv := 1 / math.Sqrt(q/float64(per)+eps)
		for i := gi * per; i < (gi+1)*per; i++ {
			ch := i / hw
			v := (float64(x[i])-mean)*inv*float64(gamma[ch]) + float64(beta[ch])
			if swish {
				v = v / (1 + math.Exp(-v))
			}
			y[i] = float32(v)
		}
	}
	return y
}
