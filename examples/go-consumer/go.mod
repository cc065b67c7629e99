module example.invalid/libenrich/examples/go-consumer

go 1.19

require example.invalid/libenrich/enrich v0.0.0

// The binding is not published anywhere: use the checkout's copy.
replace example.invalid/libenrich/enrich => ../../bindings/go
