package envflag

import "strings"

// DidYouMean returns ` (did you mean "X"?)` for the candidate closest to
// word, or "" when none is close: a typo of a command, a verb or an event
// type names the right one instead of leaving the reader to compare the
// list by eye. Close is an edit distance of at most 2 (1 for words of up to
// 4 letters, where 2 edits turn most words into any other), or word — or
// word without its last letter, for a singular such as "delivery" — being
// a prefix of exactly one candidate.
func DidYouMean(word string, candidates []string) string {
	w := strings.ToLower(word)
	if w == "" {
		return ""
	}
	best, bestDist := "", 0
	stem := w
	if len(w) >= 5 {
		stem = w[:len(w)-1]
	}
	var prefixed []string
	for _, c := range candidates {
		if strings.HasPrefix(c, stem) {
			prefixed = append(prefixed, c)
		}
		d := editDistance(w, c)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len([]rune(w)) <= 4 {
		limit = 1
	}
	switch {
	case best != "" && bestDist <= limit:
	case len(prefixed) == 1:
		best = prefixed[0]
	default:
		return ""
	}
	return ` (did you mean "` + best + `"?)`
}

// editDistance is the Levenshtein distance of a and b, counting an
// adjacent transposition ("lsit") as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
