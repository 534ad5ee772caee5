module github.com/polytel/polytel/bindings/go

go 1.26
