from partnermatch.cli import main

main()
