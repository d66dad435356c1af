"""Spanish (``es``) texts of the customer pages, keyed by the English text (i18n.py).

Placeholders in braces (``{card}``, ``{amount}``) are kept as they are. "Invoice" and
"proforma invoice" are both *factura* (feminine), so sentences with ``{name}`` agree; where
the English sentence starts with the capitalised ``{name}``, ``{lower}`` is the same name in
lower case for use inside a Spanish sentence.
"""

ES = {
    # --- pages and layout ---------------------------------------------------------------
    "Card payments": "Pagos con tarjeta",
    "Credit card": "Tarjeta de crédito",
    "Saved cards": "Tarjetas guardadas",
    "Default": "Predeterminada",
    "Expired": "Vencida",
    "expires {date}": "vence {date}",
    "replace it to keep paying by card": "reemplácela para seguir pagando con tarjeta",
    "Make default": "Hacer predeterminada",
    "Replace": "Reemplazar",
    "Remove": "Eliminar",
    "Remove {card}? You can add it again later.":
        "¿Eliminar {card}? Puede volver a agregarla más tarde.",
    "Yes, remove": "Sí, eliminar",
    "Cancel": "Cancelar",
    "Saving…": "Guardando…",
    "Removing…": "Eliminando…",
    "Paying…": "Pagando…",
    "Adding…": "Agregando…",
    "You have no saved card yet. Add one below to pay your invoices in one click.":
        "Todavía no tiene ninguna tarjeta guardada. Agregue una abajo para pagar sus facturas "
        "con un clic.",
    "Add a card": "Agregar una tarjeta",
    "Add card": "Agregar tarjeta",
    "Your card number is sent to the payment gateway and never kept here; we keep only its "
    "brand, last four digits, expiry and the name on it.":
        "El número de su tarjeta se envía a la pasarela de pago y nunca se guarda aquí; solo "
        "guardamos la marca, los últimos cuatro dígitos, el vencimiento y el nombre que figura "
        "en ella.",
    "Replace card": "Reemplazar tarjeta",
    "Replace {card}": "Reemplazar {card}",
    "Enter the new card. It takes the place of {card} (expires {date}) and becomes your "
    "default card.":
        "Ingrese la nueva tarjeta. Ocupará el lugar de {card} (vence {date}) y será su tarjeta "
        "predeterminada.",
    "Enter the new card. It takes the place of {card} (expires {date}).":
        "Ingrese la nueva tarjeta. Ocupará el lugar de {card} (vence {date}).",
    # card fields
    "Name on card": "Nombre en la tarjeta",
    "Card number": "Número de tarjeta",
    "Expiry (MM/YY)": "Vencimiento (MM/AA)",
    "MM/YY": "MM/AA",
    "Security code (CVV)": "Código de seguridad (CVV)",
    "Billing ZIP code (optional)": "Código postal de facturación (opcional)",
    "Helps your bank recognise the card (address verification). It is not kept.":
        "Ayuda a su banco a reconocer la tarjeta (verificación de dirección). No se guarda.",
    "Use as my default card": "Usar como mi tarjeta predeterminada",
    "Save this card for next time": "Guardar esta tarjeta para la próxima vez",
    "Pay with": "Pagar con",
    "A new card": "Una tarjeta nueva",
    "New card": "Tarjeta nueva",
    "Card": "Tarjeta",
    # pay modal and results
    "Invoice": "Factura",
    "Proforma invoice": "Factura proforma",
    "invoice": "factura",
    "proforma invoice": "factura proforma",
    "Total": "Total",
    "Pay by": "Pagar antes del",
    "Amount due": "Importe pendiente",
    "Partially paid": "Pagada parcialmente",
    "Note": "Nota",
    "{name} {number} is already paid. Nothing more is due.":
        "La {lower} {number} ya está pagada. No queda nada pendiente.",
    "Pay {amount}": "Pagar {amount}",
    "Have an account?": "¿Tiene una cuenta?",
    "Log in to the customer portal": "Inicie sesión en el portal de clientes",
    "to pay with a saved card.": "para pagar con una tarjeta guardada.",
    "Your card number is sent only to the payment gateway.":
        "El número de su tarjeta se envía solo a la pasarela de pago.",
    "Success!": "¡Listo!",
    "Your payment of {amount} was received. Thank you.":
        "Recibimos su pago de {amount}. Gracias.",
    "{name} {number} is now paid.": "La {lower} {number} ya está pagada.",
    "Payment approved.": "Pago aprobado.",
    "Your payment of {amount} was approved and will show on your {name} shortly.":
        "Su pago de {amount} fue aprobado y se verá en su {name} en breve.",
    "Please do not pay again.": "Por favor, no vuelva a pagar.",
    "We are checking your payment.": "Estamos verificando su pago.",
    "The payment gateway did not confirm the payment in time. Please do not pay again: we will "
    "check with the gateway, and the {name} will show Paid if the payment went through.":
        "La pasarela de pago no confirmó el pago a tiempo. Por favor, no vuelva a pagar: lo "
        "verificaremos con la pasarela y la {name} aparecerá como pagada si el pago se realizó.",
    "The payment was not made.": "El pago no se realizó.",
    "The payment was declined.": "El pago fue rechazado.",
    "Nothing was charged. You can try again, use another card, or contact your bank.":
        "No se cobró nada. Puede intentarlo de nuevo, usar otra tarjeta o comunicarse con su "
        "banco.",
    "Reference": "Referencia",
    "Try again": "Intentar de nuevo",
    "Go to the customer portal": "Ir al portal de clientes",
    "Done": "Listo",
    # refill
    "Add money": "Agregar dinero",
    "Add money to your balance": "Agregar dinero a su saldo",
    "Current balance": "Saldo actual",
    "Amount ({currency})": "Importe ({currency})",
    "From {low} to {high}, with up to two decimals (for example 25.50).":
        "De {low} a {high}, con hasta dos decimales (por ejemplo 25.50).",
    "Add": "Agregar",
    "The money goes to your account balance; your next invoices are paid from it.":
        "El dinero se suma al saldo de su cuenta; sus próximas facturas se pagan con él.",
    "{amount} was added to your balance. Thank you.":
        "Se agregaron {amount} a su saldo. Gracias.",
    "Your balance is now": "Su saldo ahora es",
    "Your payment of {amount} was approved and will show on your balance shortly.":
        "Su pago de {amount} fue aprobado y se verá en su saldo en breve.",
    "The payment gateway did not confirm the payment in time. Please do not pay again: we will "
    "check with the gateway, and your balance will rise if the payment went through.":
        "La pasarela de pago no confirmó el pago a tiempo. Por favor, no vuelva a pagar: lo "
        "verificaremos con la pasarela y su saldo aumentará si el pago se realizó.",
    "Add more": "Agregar más",
    "Back to portal": "Volver al portal",
    # widget
    "Pay your invoices": "Pague sus facturas",
    "Pay your invoices by card": "Pague sus facturas con tarjeta",
    "Your session has ended.": "Su sesión terminó.",
    "Log in again": "Inicie sesión de nuevo",
    "to see your invoices.": "para ver sus facturas.",
    "Your invoices cannot be shown right now because the billing system is not answering. "
    "Please reload the page in a few minutes.":
        "Sus facturas no se pueden mostrar ahora porque el sistema de facturación no responde. "
        "Vuelva a cargar la página en unos minutos.",
    "All your invoices are paid. Thank you!": "Todas sus facturas están pagadas. ¡Gracias!",
    "Unpaid invoices": "Facturas impagas",
    "Number": "Número",
    "Date": "Fecha",
    "Due": "Pendiente",
    "Pay": "Pagar",
    "Pay invoice {number}, {amount}": "Pagar la factura {number}, {amount}",
    "Total owed": "Total adeudado",
    # error pages
    "The form has expired": "El formulario expiró",
    "For your security the form could not be sent. Please go back, reload the page and try "
    "again.":
        "Por su seguridad, el formulario no se pudo enviar. Vuelva atrás, recargue la página e "
        "inténtelo de nuevo.",
    "Not found": "No encontrado",
    "The page or document you asked for was not found.":
        "No se encontró la página o el documento que solicitó.",
    "Not allowed": "No permitido",
    "This page cannot be used that way.": "Esta página no se puede usar de esa manera.",
    "Something went wrong": "Algo salió mal",
    "The page could not be shown. If you were paying, please check your invoices before trying "
    "again.":
        "No se pudo mostrar la página. Si estaba pagando, revise sus facturas antes de volver a "
        "intentarlo.",
    "Billing system unavailable": "Sistema de facturación no disponible",
    "The billing system is not answering right now. Please try again in a few minutes.":
        "El sistema de facturación no responde en este momento. Inténtelo de nuevo en unos "
        "minutos.",
    "The billing system is not answering right now. Nothing was charged; please try again in "
    "a few minutes.":
        "El sistema de facturación no responde en este momento. No se cobró nada; inténtelo de "
        "nuevo en unos minutos.",
    "{name} not found": "{name} no encontrada",
    "This {name} was not found.": "No se encontró esta {name}.",
    "This payment link cannot be used": "Este enlace de pago no se puede usar",
    "There is nothing to pay with this link: it may be incomplete, or the document may already "
    "be paid. Log in to the customer portal to see your invoices and pay them.":
        "No hay nada que pagar con este enlace: puede estar incompleto o el documento ya puede "
        "estar pagado. Inicie sesión en el portal de clientes para ver sus facturas y pagarlas.",
    # flashes
    "Your card was saved.": "Su tarjeta se guardó.",
    "Your card {old} was replaced by {new}.": "Su tarjeta {old} se reemplazó por {new}.",
    "The card {card} was removed.": "La tarjeta {card} se eliminó.",
    "{card} is now your default card.": "{card} es ahora su tarjeta predeterminada.",
    # field errors
    "Enter an amount.": "Ingrese un importe.",
    "Use a point for decimals, for example 12.50.":
        "Use un punto para los decimales, por ejemplo 12.50.",
    "Use at most two decimals, for example 12.50.":
        "Use como máximo dos decimales, por ejemplo 12.50.",
    "The amount must be more than zero.": "El importe debe ser mayor que cero.",
    "Enter the amount as a number, for example 12.50.":
        "Ingrese el importe como un número, por ejemplo 12.50.",
    "The smallest amount you can add is {amount}.":
        "El importe mínimo que puede agregar es {amount}.",
    "The largest amount you can add is {amount}.":
        "El importe máximo que puede agregar es {amount}.",
    "Enter the expiry as MM/YY, for example 09/29.":
        "Ingrese el vencimiento como MM/AA, por ejemplo 09/29.",
    "Enter the name as it is printed on the card.":
        "Ingrese el nombre tal como figura en la tarjeta.",
    "The name may be at most 100 characters.": "El nombre puede tener como máximo 100 caracteres.",
    "Enter the security code from the back of the card.":
        "Ingrese el código de seguridad del dorso de la tarjeta.",
    "The security code has {count} digits.": "El código de seguridad tiene {count} dígitos.",
    "Enter the ZIP code of the card's billing address, for example 30301, or leave it empty.":
        "Ingrese el código postal de la dirección de facturación de la tarjeta, por ejemplo "
        "30301, o déjelo vacío.",
    "Choose one of your saved cards or enter a new card.":
        "Elija una de sus tarjetas guardadas o ingrese una tarjeta nueva.",
    "Enter the card number.": "Ingrese el número de la tarjeta.",
    "The card number may contain digits only.": "El número de tarjeta solo puede tener dígitos.",
    "A card number has 13 to 19 digits.": "Un número de tarjeta tiene de 13 a 19 dígitos.",
    "A {brand} card number has {lengths} digits.":
        "Un número de tarjeta {brand} tiene {lengths} dígitos.",
    " or ": " o ",
    "This card number is not valid. Please check the digits.":
        "Este número de tarjeta no es válido. Revise los dígitos.",
    "The month must be between 01 and 12.": "El mes debe estar entre 01 y 12.",
    "This card has expired.": "Esta tarjeta está vencida.",
    "The expiry year is too far in the future.": "El año de vencimiento es demasiado lejano.",
    # payment and card errors
    "Choose one of your saved cards.": "Elija una de sus tarjetas guardadas.",
    "The card {card} has expired. Please add a new card.":
        "La tarjeta {card} está vencida. Agregue una tarjeta nueva.",
    "{name} {number} is already paid.": "La {lower} {number} ya está pagada.",
    "A payment for {name} {number} is already being processed. Please wait a moment and reload "
    "the page.":
        "Ya se está procesando un pago de la {name} {number}. Espere un momento y vuelva a "
        "cargar la página.",
    "The amount due on {name} {number} has just changed. Please check it and pay again.":
        "El importe pendiente de la {name} {number} acaba de cambiar. Revíselo y vuelva a pagar.",
    "Another payment to your balance is being processed. Please wait a moment and reload the "
    "page.":
        "Se está procesando otro pago a su saldo. Espere un momento y vuelva a cargar la página.",
    "The payment gateway is not answering right now, so the card could not be used. Nothing "
    "was charged. Please try again in a few minutes.":
        "La pasarela de pago no responde en este momento, por lo que no se pudo usar la tarjeta. "
        "No se cobró nada. Inténtelo de nuevo en unos minutos.",
    "The card to replace was not found.": "No se encontró la tarjeta que desea reemplazar.",
    "The card details could not be saved. Please try again.":
        "No se pudieron guardar los datos de la tarjeta. Inténtelo de nuevo.",
    # the journal's messages (services/journal.py)
    "The payment could not be sent. Nothing was charged.":
        "No se pudo enviar el pago. No se cobró nada.",
    "The payment gateway could not be reached. Nothing was charged.":
        "No se pudo contactar con la pasarela de pago. No se cobró nada.",
    "The payment did not reach the card network. Nothing was charged.":
        "El pago no llegó a la red de tarjetas. No se cobró nada.",
    # the gateway's answers (ippay/codes.py)
    "Your card issuer declined the payment. Please use another card or contact your bank.":
        "El emisor de su tarjeta rechazó el pago. Use otra tarjeta o comuníquese con su banco.",
    "Your bank declined the payment. Please check the account details or use another payment "
    "method.":
        "Su banco rechazó el pago. Revise los datos de la cuenta o use otro medio de pago.",
    "The payment could not be completed. Please try again.":
        "No se pudo completar el pago. Inténtelo de nuevo.",
    "Your card issuer could not be reached. Please try again in a few minutes.":
        "No se pudo contactar con el emisor de su tarjeta. Inténtelo de nuevo en unos minutos.",
    "Card payments are not set up correctly on our side. Please contact us.":
        "Los pagos con tarjeta no están bien configurados de nuestro lado. Comuníquese con "
        "nosotros.",
    "The card number is not valid.": "El número de tarjeta no es válido.",
    "The card has expired. Please use another card or update the expiry date.":
        "La tarjeta está vencida. Use otra tarjeta o actualice la fecha de vencimiento.",
    "The security code (CVV) is not valid. Please check it and try again.":
        "El código de seguridad (CVV) no es válido. Revíselo e inténtelo de nuevo.",
    "The payment amount was not accepted.": "El importe del pago no fue aceptado.",
    "There are not enough funds on the card. Please use another card.":
        "La tarjeta no tiene fondos suficientes. Use otra tarjeta.",
    "The original transaction could not be found.": "No se encontró la transacción original.",
    "The request does not match the original transaction.":
        "La solicitud no coincide con la transacción original.",
    "The payment gateway rejected the request. Please check the details and try again.":
        "La pasarela de pago rechazó la solicitud. Revise los datos e inténtelo de nuevo.",
    "Your card issuer approved only part of the amount, so the payment was not completed.":
        "El emisor de su tarjeta aprobó solo una parte del importe, por lo que el pago no se "
        "completó.",
    "This card cannot be used for this kind of payment. Please use another card.":
        "Esta tarjeta no se puede usar para este tipo de pago. Use otra tarjeta.",
    "The transaction was not found at the payment gateway.":
        "La transacción no se encontró en la pasarela de pago.",
    "The payment gateway could not read the request. Please try again later or contact us.":
        "La pasarela de pago no pudo leer la solicitud. Inténtelo más tarde o comuníquese con "
        "nosotros.",
    "The payment is over the card's limit. Please use another card or contact your bank.":
        "El pago supera el límite de la tarjeta. Use otra tarjeta o comuníquese con su banco.",
    "This payment was already submitted, so it was not charged again.":
        "Este pago ya se había enviado, por lo que no se volvió a cobrar.",
    "The reversal was accepted.": "La reversión fue aceptada.",
    "The bank routing number is not valid.": "El número de ruta bancaria no es válido.",
    "The bank account number is not valid.": "El número de cuenta bancaria no es válido.",
    "There are not enough funds in the bank account.":
        "La cuenta bancaria no tiene fondos suficientes.",
    "The bank account is not a checking account.": "La cuenta bancaria no es una cuenta corriente.",
    "The bank account is not a savings account.": "La cuenta bancaria no es una caja de ahorros.",
    "The card expiry date is not valid.": "La fecha de vencimiento de la tarjeta no es válida.",
    "The saved card was not recognised. Please add the card again.":
        "No se reconoció la tarjeta guardada. Vuelva a agregar la tarjeta.",
    "The payment was approved.": "El pago fue aprobado.",
    "The payment was authorised.": "El pago fue autorizado.",
    "The payment was captured.": "El pago fue capturado.",
    "The refund was accepted.": "El reembolso fue aceptado.",
    "The payment was cancelled.": "El pago fue cancelado.",
    "The card was saved.": "La tarjeta se guardó.",
    "The bank payment was accepted.": "El pago bancario fue aceptado.",
    "The bank refund was accepted.": "El reembolso bancario fue aceptado.",
    "The payment gateway is reachable.": "La pasarela de pago está disponible.",
    "The transaction was approved.": "La transacción fue aprobada.",
}
