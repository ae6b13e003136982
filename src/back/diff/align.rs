//! Matching two ordered lists by key.

use std::collections::BTreeMap;

/// Pairs the items of `a` and `b` with the same key, in A's order, with the items of
/// one side only placed where they occur: a merge of two ordered lists in linear time
/// (keys are unique names; should one repeat, its later copies count as unmatched).
pub(super) fn align<'a, T>(
    a: &'a [T],
    b: &'a [T],
    key: impl Fn(&T) -> &str,
) -> Vec<(Option<&'a T>, Option<&'a T>)> {
    let index = |items: &'a [T]| -> BTreeMap<&'a str, usize> {
        let mut map = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            map.entry(key(item)).or_insert(i);
        }
        map
    };
    let (in_a, in_b) = (index(a), index(b));
    // The partner in B of each item of A, if any.
    let partner: Vec<Option<usize>> = a
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let k = key(item);
            (in_a.get(k) == Some(&i))
                .then(|| in_b.get(k).copied())
                .flatten()
        })
        .collect();
    let mut taken = vec![false; b.len()];
    for j in partner.iter().flatten() {
        taken[*j] = true;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut j = 0;
    for (i, item) in a.iter().enumerate() {
        // B's items up to this one's partner that match nothing in A come first.
        if let Some(p) = partner[i] {
            while j < p {
                if !taken[j] {
                    out.push((None, Some(&b[j])));
                }
                j += 1;
            }
            out.push((Some(item), Some(&b[p])));
            j = j.max(p + 1);
        } else {
            out.push((Some(item), None));
        }
    }
    out.extend(
        b[j..]
            .iter()
            .enumerate()
            .filter_map(|(k, item)| (!taken[j + k]).then_some((None, Some(item)))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::align;

    fn keys(pairs: &[(Option<&&str>, Option<&&str>)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| {
                (
                    a.map_or("-".into(), |s| s.to_string()),
                    b.map_or("-".into(), |s| s.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn align_merges_in_order() {
        let a = ["stem", "x", "y", "head"];
        let b = ["stem", "y", "z", "head"];
        let got = keys(&align(&a, &b, |s| s));
        let want: Vec<(String, String)> = [
            ("stem", "stem"),
            ("x", "-"),
            ("y", "y"),
            ("-", "z"),
            ("head", "head"),
        ]
        .iter()
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn align_keeps_every_item_once_when_orders_cross() {
        let a = ["p", "q", "r", "p"];
        let b = ["r", "s", "q"];
        let got = align(&a, &b, |s| s);
        let from_a: Vec<&str> = got.iter().filter_map(|(x, _)| x.copied()).collect();
        let from_b: Vec<&str> = got.iter().filter_map(|(_, y)| y.copied()).collect();
        assert_eq!(from_a, a);
        let mut sorted_b = from_b.clone();
        sorted_b.sort_unstable();
        assert_eq!(sorted_b, ["q", "r", "s"]);
        assert!(got.iter().all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }));
    }
}
