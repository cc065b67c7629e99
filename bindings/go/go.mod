module example.invalid/libenrich/enrich

go 1.19
